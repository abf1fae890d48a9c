package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultHangCap is how long a "hang" fault holds a request when the client
// never gives up.
const DefaultHangCap = 60 * time.Second

// Faults injects seeded, reproducible faults into API requests. Build it
// with ParseFaults; a nil *Faults injects nothing.
//
// For every API request (any path except /_sandbox/… and /health/…) one
// decision is drawn from a math/rand/v2 PCG source seeded with the seed,
// under a mutex, always consuming the same number of draws, so a seed and
// the same request order give the same faults. At most one of 5xx, reset,
// lost, hang applies to a request (their probabilities add up to at most
// 1); latency applies on top, to every request that reaches the handler.
//
//   - 5xx: answers 500, 502 or 503 with an application/problem+json body
//     WITHOUT running the handler, so nothing executes and nothing is stored
//     for idempotency.
//   - reset: hijacks the connection and closes it with SO_LINGER 0 (a TCP
//     RST) before the handler runs; nothing executes.
//   - lost: runs the handler fully — the work is committed and the response
//     stored for idempotency — then drops the connection without writing a
//     byte of the response. The client cannot tell whether the work
//     happened: the double-charge case.
//   - hang: holds the request without answering and without running the
//     handler until the client gives up (request context done), the hang
//     cap passes (hangmax, default 60s) or Close is called; then the
//     connection is dropped.
//   - latency: sleeps base±jitter (uniform) before the handler.
type Faults struct {
	p5xx, pReset, pLost, pHang float64
	latency, jitter            time.Duration
	hangCap                    time.Duration
	seed                       int64
	spec                       string

	mu  sync.Mutex
	rng *rand.Rand

	closeOnce sync.Once
	done      chan struct{}
}

type faultKind int

const (
	faultNone faultKind = iota
	fault5xx
	faultReset
	faultLost
	faultHang
)

// ParseFaults parses a fault spec such as
//
//	5xx=0.1,reset=0.05,lost=0.02,latency=20ms±10ms,hang=0.01,hangmax=5s
//
// Probabilities are in [0,1] and must add up to at most 1. latency is
// BASE, BASE±JITTER or BASE+-JITTER. An empty spec injects nothing.
func ParseFaults(spec string, seed int64) (*Faults, error) {
	f := &Faults{
		hangCap: DefaultHangCap,
		seed:    seed,
		spec:    strings.TrimSpace(spec),
		rng:     rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		done:    make(chan struct{}),
	}
	if f.spec == "" {
		return f, nil
	}
	for part := range strings.SplitSeq(f.spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("faults %q: %q is not NAME=VALUE", spec, part)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "5xx", "reset", "lost", "hang":
			p, err := strconv.ParseFloat(v, 64)
			if err != nil || p < 0 || p > 1 {
				return nil, fmt.Errorf("faults %q: %s=%q is not a probability between 0 and 1", spec, k, v)
			}
			switch k {
			case "5xx":
				f.p5xx = p
			case "reset":
				f.pReset = p
			case "lost":
				f.pLost = p
			case "hang":
				f.pHang = p
			}
		case "latency":
			base, jit := v, ""
			if b, j, ok := strings.Cut(v, "±"); ok {
				base, jit = b, j
			} else if b, j, ok := strings.Cut(v, "+-"); ok {
				base, jit = b, j
			}
			d, err := time.ParseDuration(strings.TrimSpace(base))
			if err != nil || d < 0 {
				return nil, fmt.Errorf("faults %q: latency %q: want DURATION or DURATION±DURATION, e.g. 20ms±10ms", spec, v)
			}
			f.latency = d
			if jit != "" {
				j, err := time.ParseDuration(strings.TrimSpace(jit))
				if err != nil || j < 0 || j > d {
					return nil, fmt.Errorf("faults %q: latency jitter %q must be a duration no larger than %s", spec, jit, d)
				}
				f.jitter = j
			}
		case "hangmax":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("faults %q: hangmax %q is not a positive duration", spec, v)
			}
			f.hangCap = d
		default:
			return nil, fmt.Errorf("faults %q: unknown fault %q (want 5xx, reset, lost, hang, latency, hangmax)", spec, k)
		}
	}
	if sum := f.p5xx + f.pReset + f.pLost + f.pHang; sum > 1+1e-9 {
		return nil, fmt.Errorf("faults %q: probabilities of 5xx, reset, lost and hang add up to %g, more than 1", spec, sum)
	}
	return f, nil
}

// String returns the spec and seed the faults were built from.
func (f *Faults) String() string {
	if f == nil || f.spec == "" {
		return "none"
	}
	return fmt.Sprintf("%s (seed %d)", f.spec, f.seed)
}

// Enabled reports whether any fault can be injected.
func (f *Faults) Enabled() bool {
	return f != nil && (f.p5xx > 0 || f.pReset > 0 || f.pLost > 0 || f.pHang > 0 || f.latency > 0)
}

// Close releases every request held by a hang fault (they are dropped) and
// makes later hangs return at once. Call it before shutting a server down.
func (f *Faults) Close() {
	if f == nil {
		return
	}
	f.closeOnce.Do(func() { close(f.done) })
}

// decide draws the fate of one request: always three draws.
func (f *Faults) decide() (kind faultKind, status int, delay time.Duration) {
	f.mu.Lock()
	u := f.rng.Float64()
	s := f.rng.IntN(3)
	j := f.rng.Float64()
	f.mu.Unlock()

	switch {
	case u < f.p5xx:
		kind = fault5xx
	case u < f.p5xx+f.pReset:
		kind = faultReset
	case u < f.p5xx+f.pReset+f.pLost:
		kind = faultLost
	case u < f.p5xx+f.pReset+f.pLost+f.pHang:
		kind = faultHang
	}
	status = [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[s]
	delay = f.latency
	if f.jitter > 0 {
		delay += time.Duration((2*j - 1) * float64(f.jitter))
	}
	return kind, status, delay
}

// Exempt reports whether path is never subject to faults (sandbox control
// and health endpoints).
func Exempt(path string) bool {
	return strings.HasPrefix(path, "/_sandbox/") || path == "/_sandbox" ||
		strings.HasPrefix(path, "/health/") || path == "/health"
}

// Wrap returns h with faults injected, counting each under stats
// ("faults.5xx" …). stats may be nil.
func (f *Faults) Wrap(h http.Handler, stats *Stats) http.Handler {
	if !f.Enabled() {
		return h
	}
	inc := func(name string) {
		if stats != nil {
			stats.Inc(name)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Exempt(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		kind, status, delay := f.decide()
		switch kind {
		case fault5xx:
			inc(CountFault5xx)
			writeFaultProblem(w, status)
			return
		case faultReset:
			inc(CountFaultReset)
			dropConn(w, true)
			return
		case faultHang:
			inc(CountFaultHang)
			// Read the body so the server notices when the client hangs up.
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			t := time.NewTimer(f.hangCap)
			defer t.Stop()
			select {
			case <-r.Context().Done():
			case <-t.C:
			case <-f.done:
			}
			dropConn(w, false)
			return
		}
		if delay > 0 {
			inc(CountFaultLatency)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-f.done:
				t.Stop()
			}
		}
		if kind == faultLost {
			inc(CountFaultLost)
			rec := &discardWriter{header: make(http.Header)}
			h.ServeHTTP(rec, r)
			dropConn(w, false)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeFaultProblem(w http.ResponseWriter, status int) {
	body, _ := json.Marshal(map[string]any{
		"type":        "https://sandbox.paybatch.invalid/problems/injected-fault",
		"title":       http.StatusText(status),
		"status":      status,
		"detail":      "fault injected by the paybatch sandbox; nothing was executed",
		"reason_code": "INJECTED_FAULT",
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// dropConn closes the client connection without a response. rst sends a TCP
// reset instead of an orderly close. When the writer cannot be hijacked
// (HTTP/2, a recorder) it aborts the handler the way net/http documents.
func dropConn(w http.ResponseWriter, rst bool) {
	// Whatever the server buffered for the response is abandoned with the
	// connection.
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && rst {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// discardWriter takes the response of a request whose answer is "lost".
type discardWriter struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) WriteHeader(s int) {
	if d.status == 0 {
		d.status = s
	}
}
func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return d.body.Write(p)
}
