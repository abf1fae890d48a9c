package sim

import (
	"sync"
	"time"

	"github.com/paybatch/paybatch"
)

// Limiter is a fixed-window rate limiter keyed by caller (API key, token).
//
// Window semantics: a key's window opens at its first request and lasts
// exactly window; within it at most limit requests are allowed. The first
// request at or after the window's end opens a new window. Reset is the
// instant the current window ends — the value of X-RateLimit-Reset and the
// basis of Retry-After. A refused request does not consume budget.
type Limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	windows map[string]*fixedWindow
}

type fixedWindow struct {
	end  time.Time
	used int
}

// NewLimiter returns a limiter allowing l.N requests per l.Per per key.
// now defaults to time.Now. A zero Limit means unlimited: Take always
// succeeds.
func NewLimiter(l paybatch.Limit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: l.N, window: l.Per, now: now, windows: make(map[string]*fixedWindow)}
}

// Limit is the number of requests allowed per window.
func (l *Limiter) Limit() int { return l.limit }

// Window is the window length.
func (l *Limiter) Window() time.Duration { return l.window }

// Take spends one request of key's budget. ok is false when the budget of
// the current window is exhausted; remaining is what is left after this
// request; reset is when the current window ends.
func (l *Limiter) Take(key string) (ok bool, remaining int, reset time.Time) {
	now := l.now()
	if l.limit <= 0 || l.window <= 0 {
		return true, 0, now
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[key]
	if w == nil || !now.Before(w.end) {
		if w == nil {
			w = &fixedWindow{}
			l.windows[key] = w
		}
		w.end = now.Add(l.window)
		w.used = 0
	}
	if w.used >= l.limit {
		return false, 0, w.end
	}
	w.used++
	return true, l.limit - w.used, w.end
}

// Reset forgets every window.
func (l *Limiter) Reset() {
	l.mu.Lock()
	clear(l.windows)
	l.mu.Unlock()
}
