package pipeline

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/paybatch/paybatch"
)

// pace is the rate the limiters aim for under a limit of N per Per. The
// providers do not say whether their windows are fixed or sliding; a fixed
// window that opens at a request holds every request of the next Per, so
// pacing at exactly N/Per puts N+1 requests in some windows and a little
// network jitter draws a 429. Pacing at (N−1.5)/Per keeps one and a half
// requests of margin per window (97 % of 50/s, 99.85 % of 1000/min); small
// limits keep at least 90 %.
func pace(l paybatch.Limit) rate.Limit {
	n := max(float64(l.N)-1.5, 0.9*float64(l.N))
	return rate.Limit(n / l.Per.Seconds())
}

func newLimiter(l paybatch.Limit) *rate.Limiter {
	if l.IsZero() {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(pace(l), 1)
}

// Pacer is the shared pacing of one provider credential: a limiter per
// request class, one for all requests, and a gate that a 429 (or an
// exhausted X-RateLimit-Remaining) closes for every worker at once. Create
// one per provider and credential, give its OnRate to the client, and pass
// it in Config.Pacer so submissions and polls share it.
type Pacer struct {
	limits                  paybatch.Limits
	submit, status, overall *rate.Limiter
	gate                    gate

	mu        sync.Mutex
	windowEnd map[int]time.Time // advertised limit → estimated end of the provider's current window
}

// NewPacer builds a pacer for the given limits.
func NewPacer(l paybatch.Limits) *Pacer {
	return &Pacer{limits: l, submit: newLimiter(l.Submit), status: newLimiter(l.Status), overall: newLimiter(l.Overall)}
}

// minN is the smallest request count among the pacer's limits.
func (t *Pacer) minN() int {
	n := math.MaxInt
	for _, l := range []paybatch.Limit{t.limits.Submit, t.limits.Status, t.limits.Overall} {
		if !l.IsZero() && l.N < n {
			n = l.N
		}
	}
	return n
}

// Limits are the limits the pacer enforces.
func (t *Pacer) Limits() paybatch.Limits { return t.limits }

// Pause closes the gate for d: no request of this credential leaves before.
func (t *Pacer) Pause(d time.Duration) { t.gate.pauseUntil(time.Now().Add(d)) }

// OnRate takes a response's X-RateLimit-* headers (the provider clients'
// OnRate hook). When the provider says the window's budget is (nearly)
// spent, every worker waits for the window to end. X-RateLimit-Reset is in
// whole seconds, so the end is estimated more closely where possible: a
// response with Remaining = Limit−1 came from the request that opened a
// window, which ends one period of the matching configured limit later
// (never later than Reset). Without such an estimate the pacer waits for
// Reset only when the advertised limit is stricter than its own (a
// credential with a lower limit than configured); otherwise its own pacing
// already keeps under the limit and a rounded-up Reset would waste up to a
// second per window.
func (t *Pacer) OnRate(info paybatch.RateInfo) {
	if !info.Known || info.Limit <= 0 {
		return
	}
	now := time.Now()
	t.mu.Lock()
	per := t.perFor(info.Limit)
	if per > 0 && info.Remaining == info.Limit-1 {
		if t.windowEnd == nil {
			t.windowEnd = make(map[int]time.Time)
		}
		t.windowEnd[info.Limit] = now.Add(per)
	}
	end := t.windowEnd[info.Limit]
	t.mu.Unlock()
	if info.Remaining > 1 {
		return
	}
	until := info.Reset
	if !end.IsZero() && end.After(now) && (until.IsZero() || end.Before(until)) {
		until = end.Add(2 * time.Millisecond)
	} else if info.Limit >= t.minN() {
		return
	}
	if d := until.Sub(now); d > 0 && d <= time.Minute {
		t.gate.pauseUntil(until)
	}
}

// perFor is the period of a configured limit of n requests (0 if none).
func (t *Pacer) perFor(n int) time.Duration {
	for _, l := range []paybatch.Limit{t.limits.Submit, t.limits.Status, t.limits.Overall} {
		if l.N == n {
			return l.Per
		}
	}
	return 0
}

// wait blocks until a request of the given class may leave: the gate is
// open and both limiters granted a token. If the gate closed while waiting
// for a token, the token is given up and the wait starts over, so workers do
// not all fire at once when a pause ends.
func (t *Pacer) wait(ctx context.Context, class *rate.Limiter) error {
	for {
		if err := t.gate.wait(ctx); err != nil {
			return err
		}
		if err := class.Wait(ctx); err != nil {
			return err
		}
		if err := t.overall.Wait(ctx); err != nil {
			return err
		}
		if !t.gate.closed() {
			return nil
		}
	}
}

// gate pauses every worker until a moment in time.
type gate struct {
	mu    sync.Mutex
	until time.Time
}

// pauseUntil closes the gate until at least t.
func (g *gate) pauseUntil(t time.Time) {
	g.mu.Lock()
	if t.After(g.until) {
		g.until = t
	}
	g.mu.Unlock()
}

func (g *gate) closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(g.until)
}

func (g *gate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		d := time.Until(g.until)
		g.mu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// window is a semaphore whose size follows rate × observed latency, so the
// limiter, not the pool, sets the pace; it never exceeds max.
type window struct {
	mu       sync.Mutex
	cond     *sync.Cond
	inUse    int
	size     int
	min, max int
	rate     float64 // requests per second the pool must sustain
	ewma     time.Duration
	fixed    bool
}

func newWindow(ratePerSec float64, fixed, max int) *window {
	w := &window{min: 8, max: max, rate: ratePerSec}
	w.cond = sync.NewCond(&w.mu)
	if fixed > 0 {
		w.size, w.fixed = fixed, true
		return w
	}
	w.ewma = 50 * time.Millisecond // until observed
	w.resize()
	return w
}

func (w *window) resize() {
	want := 8
	if !math.IsInf(w.rate, 1) {
		// Four times rate × latency keeps the limiter the bottleneck
		// through latency and scheduling jitter (a worker waiting for a
		// token costs nothing); +4 covers very low rates.
		want = int(math.Ceil(4*w.rate*w.ewma.Seconds())) + 4
		// A journal commit can stall for a few hundred ms on a busy disk;
		// rows whose intent is already committed keep the limiter busy
		// through it when the window covers half a second of sends.
		want = max(want, int(math.Ceil(w.rate/2)))
	} else {
		want = w.max
	}
	w.size = min(max(want, w.min), w.max)
	w.cond.Broadcast()
}

// observe feeds one request latency into the estimate.
func (w *window) observe(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fixed {
		return
	}
	w.ewma = (w.ewma*7 + d) / 8
	w.resize()
}

func (w *window) acquire(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.inUse >= w.size {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.cond.Wait()
	}
	w.inUse++
	return nil
}

func (w *window) release() {
	w.mu.Lock()
	w.inUse--
	w.cond.Broadcast()
	w.mu.Unlock()
}

// wake lets waiters re-check their context after cancellation.
func (w *window) wake() {
	w.mu.Lock()
	w.cond.Broadcast()
	w.mu.Unlock()
}

// Size is the current window size (for progress and logs).
func (w *window) current() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}
