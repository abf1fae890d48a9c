package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/paybatch/paybatch/pipeline"
)

// Engine warnings that recur (a slow disk, a throttled credential) and the
// words the bar shows their count under.
const (
	warnSlowCommit  = "slow journal commit"
	logFoldInterval = 30 * time.Second // in a log, one line per warning message at most this often
)

// progressReporter shows a live bar when stderr is a terminal, otherwise a
// structured log line every 5 s. It returns the function that stops it.
func progressReporter(e *env, cfg *pipeline.Config, total int) func() {
	if e.quiet {
		return func() {}
	}
	if cfg.Logger == nil {
		cfg.Logger = e.log
	}
	return newProgress(e.stderr, isTerminal(e.stderr), cfg)
}

// newProgress installs the progress display on cfg and folds the warnings
// of cfg.Logger. On a terminal the bar owns the line: warnings are counted
// into its description and listed once when it stops. In a log, warnings
// are rate-limited (warnFold) and progress is a log line every 5 s.
func newProgress(w io.Writer, terminal bool, cfg *pipeline.Config) (stop func()) {
	log := cfg.Logger
	fold := newWarnFold(log.Handler(), terminal, logFoldInterval)
	cfg.Logger = slog.New(fold)
	if !terminal {
		cfg.ProgressEvery = 5 * time.Second
		cfg.Progress = func(p pipeline.Progress) {
			rate := 0.0
			if p.Elapsed > 0 {
				rate = float64(p.Done) / p.Elapsed.Seconds()
			}
			log.Info("progress", "phase", p.Phase, "done", p.Done, "total", p.Total, "rows_per_s", fmt.Sprintf("%.1f", rate),
				"requests", p.Requests, "retries", p.Retries, "rate_limited", p.RateLimited, "elapsed", p.Elapsed.Round(time.Second))
		}
		return func() { fold.Flush(context.Background()) }
	}
	var bar *progressbar.ProgressBar
	var last pipeline.Progress
	phase := ""
	// finish ends a phase's bar. A phase stopped short (Ctrl-C, an error)
	// keeps the count it reached and says so: Finish would draw 100 %.
	finish := func() {
		if bar == nil {
			return
		}
		if last.Done >= last.Total {
			_ = bar.Finish()
			fmt.Fprintln(w)
			return
		}
		_ = bar.Exit()
		fmt.Fprintf(w, "\n%s stopped at %d of %d rows\n", last.Phase, last.Done, last.Total)
	}
	cfg.ProgressEvery = 200 * time.Millisecond
	cfg.Progress = func(p pipeline.Progress) {
		if p.Phase != phase {
			finish()
			phase = p.Phase
			bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"), progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
		}
		desc := fmt.Sprintf("%s  429s %d  retries %d", p.Phase, p.RateLimited, p.Retries)
		if n := fold.Count(warnSlowCommit); n > 0 {
			desc += fmt.Sprintf("  slow commits %d", n)
		}
		bar.Describe(desc)
		_ = bar.Set(p.Done)
		last = p
	}
	return func() {
		finish()
		if s := fold.Summary(); s != "" {
			fmt.Fprintln(w, s)
		}
	}
}
