package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// warnFold is a slog.Handler that keeps repeated warnings from flooding the
// screen or the log (#16 finding 11: 87 "slow journal commit" lines through
// the progress bar). Each warning message is counted. With hold set (a
// progress bar owns the terminal) warnings are not printed at all; the bar
// shows the counts and Summary lists them at the end. Without it, the first
// of each message is logged, then at most one per every, carrying how many
// were folded into it. Other levels pass through.
type warnFold struct {
	next  slog.Handler
	state *foldState
}

type foldState struct {
	mu    sync.Mutex
	hold  bool
	every time.Duration
	now   func() time.Time
	warns map[string]*foldCount
}

type foldCount struct {
	total, pending int       // all seen; seen since the last line logged
	last           time.Time // when the last line was logged
}

func newWarnFold(next slog.Handler, hold bool, every time.Duration) *warnFold {
	return &warnFold{next: next, state: &foldState{hold: hold, every: every, now: time.Now, warns: map[string]*foldCount{}}}
}

func (h *warnFold) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *warnFold) Handle(ctx context.Context, r slog.Record) error {
	if r.Level != slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	s := h.state
	s.mu.Lock()
	c := s.warns[r.Message]
	if c == nil {
		c = &foldCount{}
		s.warns[r.Message] = c
	}
	c.total++
	c.pending++
	now := s.now()
	emit := !s.hold && (c.last.IsZero() || now.Sub(c.last) >= s.every)
	folded := c.pending - 1
	if emit {
		c.last, c.pending = now, 0
	}
	s.mu.Unlock()
	if !emit {
		return nil
	}
	if folded > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", folded))
	}
	return h.next.Handle(ctx, r)
}

func (h *warnFold) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnFold{next: h.next.WithAttrs(as), state: h.state}
}

func (h *warnFold) WithGroup(name string) slog.Handler {
	return &warnFold{next: h.next.WithGroup(name), state: h.state}
}

// Count returns how many warnings with msg were seen.
func (h *warnFold) Count(msg string) int {
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if c := h.state.warns[msg]; c != nil {
		return c.total
	}
	return 0
}

// Summary is one line listing every warning seen and how often, "" when
// there were none: "warnings: rate limited: pausing every worker ×4, slow
// journal commit ×87".
func (h *warnFold) Summary() string {
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	msgs := make([]string, 0, len(h.state.warns))
	for m := range h.state.warns {
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return ""
	}
	slices.Sort(msgs)
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = fmt.Sprintf("%s ×%d", m, h.state.warns[m].total)
	}
	return "warnings: " + strings.Join(parts, ", ")
}

// Flush logs, in log mode, one line for each message with warnings folded
// since its last line, so the log's counts add up.
func (h *warnFold) Flush(ctx context.Context) {
	s := h.state
	s.mu.Lock()
	var lines []slog.Record
	for m, c := range s.warns {
		if c.pending > 0 && !s.hold {
			r := slog.NewRecord(s.now(), slog.LevelWarn, m, 0)
			r.AddAttrs(slog.Int("repeated", c.pending), slog.Int("total", c.total))
			lines = append(lines, r)
			c.pending = 0
		}
	}
	s.mu.Unlock()
	for _, r := range lines {
		_ = h.next.Handle(ctx, r)
	}
}
