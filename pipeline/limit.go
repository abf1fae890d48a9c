package pipeline

import (
	"context"
	"fmt"
	"math"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/paybatch/paybatch"
)

// Pacing. The providers do not say whether their windows are fixed or
// sliding, nor where a fixed window starts; the sandbox's opens at the first
// request that arrives after the previous one ended. Two things put N+1
// requests into one provider window when a client simply spaces them at
// N/Per: requests arrive with the network's latency jitter (a request sent
// early can land late, and the window's opener early), and a worker woken
// late by the scheduler sends right before the next one. So a class of
// requests is paced by two rules:
//   - a token bucket of one (golang.org/x/time/rate, burst 1) spaces
//     departures evenly at (N−½)/(Per+J), never a burst;
//   - a log of the last N departures holds the next one until the oldest is
//     Per+J old: no N+1 departures ever fall within Per+J, whatever the
//     scheduler did, so no N+1 arrivals fall within Per while the arrival
//     jitter stays below J.
// J is the spread of the observed request latencies (1st to 99th
// percentile of the last 256, plus 2 ms; at most Per/4), 30 ms until there
// are 32 samples. (The 5th to 95th left the tails out: on a loaded machine
// a scheduling delay of a few ms at a window's opener then drew 429s in
// two of six runs; at 50 ± 10 ms the wider spread costs ≈ 0.2 % of rate.)
// That is enough: a window holds N+1 arrivals only when the request that
// opened it came later, by more than J plus the bucket's slack, than the
// one N departures after it — a pair from the two tails, and only at a
// window's opener. At 300/s with 50 ± 10 ms latency it paces at ≈ 98 %.
//
// A departure's time in the log is the moment its request was written
// (net/http/httptrace's WroteRequest, see Pacer.trace) when that is later
// than the moment the pacer let it go: a worker that the scheduler runs
// late after its admission (a loaded machine, a commit holding the only
// core) would otherwise arrive later than the log thinks, and the request
// N departures after it could land in the window it opened.

const (
	latSamples     = 256
	defaultJitter  = 30 * time.Millisecond
	jitterMargin   = 2 * time.Millisecond
	maxLoggedLimit = 1 << 16 // larger limits are paced by the bucket alone
)

// jitter is the allowance j bounded for this class: at most a quarter of
// its period. On a machine so loaded that latencies spread by 50 ms and more
// the arrivals really spread that much (a cap of Per/20 drew 429s at load
// 16 on 2 cores), and one 429 costs every worker a Retry-After of 1 s.
func (c *class) jitter(j time.Duration) time.Duration { return min(j, c.limit.Per/4) }

// pace is the bucket's rate for a limit of N per Per, given the jitter j.
func pace(l paybatch.Limit, j time.Duration) rate.Limit {
	n := max(float64(l.N)-0.5, 0.9*float64(l.N))
	return rate.Limit(n / (l.Per + j).Seconds())
}

// class paces one kind of request under one limit.
type class struct {
	name  string         // for notices: "payment operations", "status queries", "requests"
	limit paybatch.Limit // in force: the configured one, or less when the provider announced less
	lim   *rate.Limiter
	sent  []time.Time // ring of the last limit.N departures; nil when unlimited or too large
	next  int
}

func newClass(name string, l paybatch.Limit, j time.Duration) *class {
	c := &class{name: name}
	c.set(l, j)
	return c
}

// set puts limit l in force (the ring keeps its newest departures).
func (c *class) set(l paybatch.Limit, j time.Duration) {
	c.limit = l
	if l.IsZero() {
		c.lim, c.sent = rate.NewLimiter(rate.Inf, 1), nil
		return
	}
	if c.lim == nil {
		c.lim = rate.NewLimiter(pace(l, c.jitter(j)), 1)
	} else {
		c.lim.SetLimit(pace(l, c.jitter(j)))
	}
	if l.N > maxLoggedLimit {
		c.sent = nil
		return
	}
	ring := make([]time.Time, l.N)
	for i := range min(len(c.sent), l.N) { // newest first, backwards
		ring[l.N-1-i] = c.sent[(c.next-1-i+2*len(c.sent))%len(c.sent)]
	}
	c.sent, c.next = ring, 0
}

// due is when the next departure may leave under the log (zero: now).
func (c *class) due(j time.Duration) time.Time {
	if len(c.sent) == 0 || c.sent[c.next].IsZero() {
		return time.Time{}
	}
	return c.sent[c.next].Add(c.limit.Per + c.jitter(j))
}

// record logs a departure at t and returns its slot (−1: not logged).
func (c *class) record(t time.Time) int {
	if len(c.sent) == 0 {
		return -1
	}
	slot := c.next
	c.sent[slot] = t
	c.next = (c.next + 1) % len(c.sent)
	return slot
}

// wrote moves the departure logged at slot at released to at, the moment
// its request was written, if that is later and the slot still holds it.
func (c *class) wrote(slot int, released, at time.Time) {
	if slot >= 0 && slot < len(c.sent) && c.sent[slot].Equal(released) && at.After(released) {
		c.sent[slot] = at
	}
}

// departure is an admitted request's place in the logs (see Pacer.trace).
type departure struct {
	class       *class
	slot, oslot int // in its class's log and in the log of all requests; −1: none
	at          time.Time
	observed    *atomic.Bool // set by trace's hook once it took the latency
}

// Pacer is the shared pacing of one provider credential: a class per kind
// of request, one for all requests, and a gate that a 429 (or an exhausted
// X-RateLimit-Remaining) closes for every worker at once. Create one per
// provider and credential, give its OnRate to the client, and pass it in
// Config.Pacer so submissions and polls share it.
//
// The limits it starts with are the most it ever uses: when a response's
// X-RateLimit-Limit announces less for a class, the pacer lowers that
// class to the announced limit for the rest of its life and says so once
// (SetNotify); an announcement of more changes nothing.
type Pacer struct {
	limits paybatch.Limits // as configured
	gate   gate

	mu                      sync.Mutex // guards everything below
	submit, status, overall *class
	lat                     [latSamples]time.Duration
	latN                    int // samples taken
	jitter                  time.Duration
	windowEnd               map[int]time.Time // advertised limit → estimated end of the provider's current window
	notify                  func(string)
	said                    map[string]bool
}

// NewPacer builds a pacer for the given limits.
func NewPacer(l paybatch.Limits) *Pacer {
	t := &Pacer{limits: l, jitter: defaultJitter}
	t.submit = newClass("payment operations", l.Submit, t.jitter)
	t.status = newClass("status queries", l.Status, t.jitter)
	t.overall = newClass("requests", l.Overall, t.jitter)
	return t
}

// SetNotify sets where the pacer tells a person that it lowered a limit
// (once per class and limit).
func (t *Pacer) SetNotify(f func(msg string)) {
	t.mu.Lock()
	t.notify = f
	t.mu.Unlock()
}

// minN is the smallest request count among the pacer's limits in force.
func (t *Pacer) minN() int {
	n := math.MaxInt
	for _, c := range []*class{t.submit, t.status, t.overall} {
		if !c.limit.IsZero() && c.limit.N < n {
			n = c.limit.N
		}
	}
	return n
}

// Limits are the limits the pacer enforces now: the configured ones, lowered
// where the provider announced less.
func (t *Pacer) Limits() paybatch.Limits {
	t.mu.Lock()
	defer t.mu.Unlock()
	return paybatch.Limits{Submit: t.submit.limit, Status: t.status.limit, Overall: t.overall.limit}
}

// Jitter is the latency spread the pacer currently allows for.
func (t *Pacer) Jitter() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.jitter
}

// Pause closes the gate for d: no request of this credential leaves before.
func (t *Pacer) Pause(d time.Duration) { t.gate.pauseUntil(time.Now().Add(d)) }

// Observe takes one request's latency (departure to answer). Every 32
// samples the allowance for latency jitter is recomputed from the last 256.
func (t *Pacer) Observe(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lat[t.latN%latSamples] = d
	t.latN++
	if t.latN < 32 || t.latN%32 != 0 {
		return
	}
	s := slices.Clone(t.lat[:min(t.latN, latSamples)])
	slices.Sort(s)
	k := len(s) / 100 // 1st and 99th percentiles
	j := max(s[len(s)-1-k]-s[k]+jitterMargin, jitterMargin)
	if d := j - t.jitter; d > time.Millisecond || d < -time.Millisecond {
		t.jitter = j
		for _, c := range []*class{t.submit, t.status, t.overall} {
			if !c.limit.IsZero() {
				c.lim.SetLimit(pace(c.limit, c.jitter(j)))
			}
		}
	}
}

// classFor is the class whose limit a response's headers describe: the
// status class for a status query, else the payment class, else the
// overall one (SmarterPay has a single limit).
func (t *Pacer) classFor(info paybatch.RateInfo) *class {
	if info.Query && !t.status.limit.IsZero() {
		return t.status
	}
	if !info.Query && !t.submit.limit.IsZero() {
		return t.submit
	}
	return t.overall
}

// OnRate takes a response's X-RateLimit-* headers (the provider clients'
// OnRate hook).
//
// An announced limit below the one in force for the request's class lowers
// that class (never raises it: a contracted limit is used until the
// provider says otherwise, and never above what it announces).
//
// When the provider says the window's budget is (nearly) spent, every
// worker waits for the window to end. X-RateLimit-Reset is in whole
// seconds, so the end is estimated more closely where possible: a response
// with Remaining = Limit−1 came from the request that opened a window, which
// ends one period of the matching limit later (never later than Reset).
// Without such an estimate the pacer waits for Reset only when the
// advertised limit is stricter than its own; otherwise its own pacing
// already keeps under the limit and a rounded-up Reset would waste up to a
// second per window.
func (t *Pacer) OnRate(info paybatch.RateInfo) {
	if !info.Known || info.Limit <= 0 {
		return
	}
	now := time.Now()
	t.mu.Lock()
	minN := t.minN() // before any lowering: a window counted at the old pace may be spent
	var notice string
	if c := t.classFor(info); !c.limit.IsZero() && info.Limit < c.limit.N {
		was := c.limit
		c.set(paybatch.Limit{N: info.Limit, Per: was.Per}, t.jitter)
		if key := c.name + "/" + c.limit.String(); !t.said[key] {
			if t.said == nil {
				t.said = make(map[string]bool)
			}
			t.said[key] = true
			notice = fmt.Sprintf("the provider announces %d %s per %s (X-RateLimit-Limit), below the %s paybatch was using: pacing at %s from now on",
				info.Limit, c.name, perText(was.Per), was, c.limit)
		}
	}
	notify := t.notify
	per := t.perFor(info.Limit)
	if per > 0 && info.Remaining == info.Limit-1 {
		if t.windowEnd == nil {
			t.windowEnd = make(map[int]time.Time)
		}
		t.windowEnd[info.Limit] = now.Add(per)
	}
	end := t.windowEnd[info.Limit]
	t.mu.Unlock()
	if notice != "" && notify != nil {
		notify(notice)
	}
	if info.Remaining > 1 {
		return
	}
	until := info.Reset
	if !end.IsZero() && end.After(now) && (until.IsZero() || end.Before(until)) {
		until = end.Add(2 * time.Millisecond)
	} else if info.Limit >= minN {
		return
	}
	if d := until.Sub(now); d > 0 && d <= time.Minute {
		t.gate.pauseUntil(until)
	}
}

func perText(d time.Duration) string {
	if d == time.Second {
		return "second"
	}
	return paybatch.Limit{N: 1, Per: d}.String()[2:]
}

// perFor is the period of a limit in force of n requests (0 if none).
func (t *Pacer) perFor(n int) time.Duration {
	for _, c := range []*class{t.submit, t.status, t.overall} {
		if c.limit.N == n {
			return c.limit.Per
		}
	}
	return 0
}

// wait blocks until a request of the given class may leave: the gate is
// open, both buckets granted a token and both logs allow it. If the gate
// closed while waiting, the wait starts over, so workers do not all fire at
// once when a pause ends. The departure it returns is for trace.
func (t *Pacer) wait(ctx context.Context, class *class) (departure, error) {
	for {
		if err := t.gate.wait(ctx); err != nil {
			return departure{}, err
		}
		t.mu.Lock()
		cl, ol := class.lim, t.overall.lim
		t.mu.Unlock()
		if err := cl.Wait(ctx); err != nil {
			return departure{}, err
		}
		if err := ol.Wait(ctx); err != nil {
			return departure{}, err
		}
		var dep departure
		for {
			var d time.Duration
			dep, d = t.admit(class)
			if d <= 0 {
				break
			}
			if err := sleep(ctx, d); err != nil {
				return departure{}, err
			}
		}
		if !t.gate.closed() {
			return dep, nil
		}
	}
}

// admit records a departure of class now, if both logs allow it; otherwise
// it returns how long to wait.
func (t *Pacer) admit(c *class) (departure, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	var wait time.Duration
	for _, x := range []*class{c, t.overall} {
		if d := x.due(t.jitter).Sub(now); d > wait {
			wait = d
		}
	}
	if wait > 0 {
		return departure{}, wait
	}
	dep := departure{class: c, slot: c.record(now), oslot: -1, at: now}
	if c != t.overall {
		dep.oslot = t.overall.record(now)
	}
	return dep, 0
}

// trace returns ctx carrying an httptrace.ClientTrace that moves dep in the
// logs to the moment its request is written (see the pacing notes above)
// and takes the request's latency for the jitter allowance from that
// moment to the answer's first byte — the provider's and the network's
// spread, not the client's own scheduling before the write (the log now
// covers that) or after the answer. ctx itself when dep is in no log.
// dep.Observed then says whether the latency was taken.
func (t *Pacer) trace(ctx context.Context, dep *departure) context.Context {
	if dep.class == nil || dep.slot < 0 && dep.oslot < 0 {
		return ctx
	}
	d := *dep
	var wrote atomic.Pointer[time.Time] // the hooks run on the transport's write and read loops
	dep.observed = new(atomic.Bool)
	seen := dep.observed
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			now := time.Now()
			wrote.Store(&now)
			t.wrote(d, now)
		},
		GotFirstResponseByte: func() {
			if w := wrote.Load(); w != nil {
				t.Observe(time.Since(*w))
				seen.Store(true)
			}
		},
	})
}

// Observed reports whether trace took the request's latency.
func (d departure) Observed() bool { return d.observed != nil && d.observed.Load() }

// wrote moves dep in the logs to at, when its request was written.
func (t *Pacer) wrote(dep departure, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dep.class.wrote(dep.slot, dep.at, at)
	t.overall.wrote(dep.oslot, dep.at, at)
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
	was := w.size
	w.size = min(max(want, w.min), w.max)
	if w.size > was {
		w.cond.Broadcast() // room for more: wake every waiter (a shrink wakes none)
	}
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
	if ctx.Err() != nil {
		// Woken for a free slot but leaving: pass the wake-up on.
		w.cond.Signal()
		return ctx.Err()
	}
	w.inUse++
	return nil
}

// release frees a slot and wakes one waiter for it. (Waking every waiter on
// every release — a hundred goroutines at a limit, 300 times a second — was
// most of the CPU a paced run spent.)
func (w *window) release() {
	w.mu.Lock()
	w.inUse--
	w.cond.Signal()
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
