package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/paybatch/paybatch/pipeline"
)

// TestProgressFoldsWarnings is #16 finding 11: a 5,000-row submit printed 87
// "slow journal commit" lines and 4 rate-limit lines through the bar,
// splitting it mid-word. On a terminal the bar now counts them and one line
// lists them at the end; in a log they are rate-limited.
func TestProgressFoldsWarnings(t *testing.T) {
	emit := func(cfg *pipeline.Config) {
		for range 87 {
			cfg.Logger.Warn(warnSlowCommit, "took", "150ms")
		}
		for range 4 {
			cfg.Logger.Warn("rate limited: pausing every worker", "retry_after", "1s")
		}
	}

	t.Run("terminal", func(t *testing.T) {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, nil))
		cfg := pipeline.Config{Logger: log}
		stop := newProgress(&out, true, &cfg)
		cfg.Progress(pipeline.Progress{Phase: "submit", Total: 5000, Done: 10})
		emit(&cfg)
		cfg.Progress(pipeline.Progress{Phase: "submit", Total: 5000, Done: 5000, RateLimited: 4})
		stop()
		s := out.String()
		if n := strings.Count(s, warnSlowCommit); n != 1 {
			t.Errorf("%q printed %d times, want once (in the summary):\n%s", warnSlowCommit, n, s)
		}
		if strings.Contains(s, "level=WARN") {
			t.Errorf("a warning was logged through the bar:\n%s", s)
		}
		for _, want := range []string{"slow commits 87", "warnings: rate limited: pausing every worker ×4, slow journal commit ×87"} {
			if !strings.Contains(s, want) {
				t.Errorf("output lacks %q:\n%s", want, s)
			}
		}
	})

	t.Run("log", func(t *testing.T) {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, nil))
		cfg := pipeline.Config{Logger: log}
		stop := newProgress(&out, false, &cfg)
		emit(&cfg)
		stop()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d log lines, want 4 (first of each message, then one folded line each):\n%s", len(lines), out.String())
		}
		for _, want := range []string{"repeated=86 total=87", "repeated=3 total=4"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, out.String())
			}
		}
	})
}

// TestProgressStoppedShortIsNotComplete is #16 finding 8's last part: after
// Ctrl-C the bar jumped to 100 % (Finish sets the count to the total). A
// phase stopped short keeps its count and says where it stopped.
func TestProgressStoppedShortIsNotComplete(t *testing.T) {
	var out bytes.Buffer
	cfg := pipeline.Config{Logger: slog.New(slog.NewTextHandler(&out, nil))}
	stop := newProgress(&out, true, &cfg)
	cfg.Progress(pipeline.Progress{Phase: "submit", Total: 600, Done: 173})
	stop() // interrupted
	s := out.String()
	for _, bad := range []string{"100%", "600/600"} {
		if strings.Contains(s, bad) {
			t.Errorf("a run stopped at 173 of 600 shows %q:\n%s", bad, s)
		}
	}
	if !strings.Contains(s, "submit stopped at 173 of 600 rows") {
		t.Errorf("output does not say where the run stopped:\n%s", s)
	}

	// A phase that completed still ends at 100 %.
	out.Reset()
	stop = newProgress(&out, true, &cfg)
	cfg.Progress(pipeline.Progress{Phase: "submit", Total: 600, Done: 600})
	stop()
	if s := out.String(); !strings.Contains(s, "100%") || strings.Contains(s, "stopped") {
		t.Errorf("a completed phase:\n%s", s)
	}
}
