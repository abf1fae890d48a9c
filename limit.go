package paybatch

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limit is a request budget: N requests per Per. The zero Limit means "no
// limit of this kind". It is the one way paybatch writes a rate: the
// documented provider limits (smartretry.Limits, smarterpay.Limits), the
// --rate flags, the engine's pacing and the sandboxes' fixed windows.
type Limit struct {
	N   int
	Per time.Duration
}

// ParseLimit parses "N/DURATION" ("50/1s", "1000/60s", "100/500ms"). A bare
// unit after the slash means one of it ("100/s" = 100/1s).
func ParseLimit(s string) (Limit, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Limit{}, fmt.Errorf("rate %q: want N/DURATION, e.g. 50/1s", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count <= 0 {
		return Limit{}, fmt.Errorf("rate %q: %q is not a positive whole number of requests", s, n)
	}
	per = strings.TrimSpace(per)
	if per != "" && (per[0] < '0' || per[0] > '9') && per[0] != '.' {
		per = "1" + per
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Limit{}, fmt.Errorf("rate %q: %q is not a positive duration (use e.g. 1s, 60s, 1m)", s, per)
	}
	return Limit{N: count, Per: d}, nil
}

// IsZero reports whether l sets no limit.
func (l Limit) IsZero() bool { return l.N <= 0 || l.Per <= 0 }

// PerSecond is the limit as a rate in requests per second.
func (l Limit) PerSecond() float64 {
	if l.IsZero() {
		return math.Inf(1)
	}
	return float64(l.N) / l.Per.Seconds()
}

func (l Limit) String() string {
	if l.IsZero() {
		return "unlimited"
	}
	if l.Per%time.Second == 0 {
		return fmt.Sprintf("%d/%ds", l.N, l.Per/time.Second) // 1000/60s, not 1000/1m0s
	}
	return fmt.Sprintf("%d/%s", l.N, l.Per)
}

// Min returns the stricter of l and o (a zero Limit is no limit).
func (l Limit) Min(o Limit) Limit {
	switch {
	case l.IsZero():
		return o
	case o.IsZero():
		return l
	case o.PerSecond() < l.PerSecond():
		return o
	}
	return l
}

// Limits are one credential's budgets at a provider.
type Limits struct {
	Submit  Limit // payment operations
	Status  Limit // status queries
	Overall Limit // every request combined
}
