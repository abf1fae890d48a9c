package sim

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
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

// NewLimiter returns a limiter allowing limit requests per window per key.
// now defaults to time.Now. A limit or window ≤ 0 means unlimited: Take
// always succeeds.
func NewLimiter(limit int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: limit, window: window, now: now, windows: make(map[string]*fixedWindow)}
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

// ParseRate parses "N/DURATION" such as "50/1s", "1000/60s" or "100/500ms".
// A bare unit after the slash means one of it ("10/s" = "10/1s").
func ParseRate(s string) (limit int, window time.Duration, err error) {
	n, d, found := strings.Cut(strings.TrimSpace(s), "/")
	if !found {
		return 0, 0, fmt.Errorf("rate %q: want N/DURATION, e.g. 50/1s", s)
	}
	limit, err = strconv.Atoi(strings.TrimSpace(n))
	if err != nil || limit <= 0 {
		return 0, 0, fmt.Errorf("rate %q: %q is not a positive request count", s, n)
	}
	d = strings.TrimSpace(d)
	if d != "" && (d[0] < '0' || d[0] > '9') && d[0] != '.' {
		d = "1" + d
	}
	window, err = time.ParseDuration(d)
	if err != nil || window <= 0 {
		return 0, 0, fmt.Errorf("rate %q: %q is not a positive duration (e.g. 1s, 60s, 500ms)", s, d)
	}
	return limit, window, nil
}
