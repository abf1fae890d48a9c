package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/paybatch/paybatch/pipeline"
)

// progressReporter shows a live bar when stderr is a terminal, otherwise a
// structured log line every 5 s. It returns the function that stops it.
func progressReporter(e *env, cfg *pipeline.Config, total int) func() {
	if e.quiet {
		return func() {}
	}
	if isTerminal(e.stderr) {
		var bar *progressbar.ProgressBar
		phase := ""
		cfg.ProgressEvery = 200 * time.Millisecond
		cfg.Progress = func(p pipeline.Progress) {
			if p.Phase != phase {
				if bar != nil {
					_ = bar.Finish()
					fmt.Fprintln(e.stderr)
				}
				phase = p.Phase
				bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(e.stderr), progressbar.OptionShowCount(),
					progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"), progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
			}
			bar.Describe(fmt.Sprintf("%s  429s %d  retries %d", p.Phase, p.RateLimited, p.Retries))
			_ = bar.Set(p.Done)
		}
		return func() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(e.stderr)
			}
		}
	}
	log := e.log
	cfg.ProgressEvery = 5 * time.Second
	cfg.Progress = func(p pipeline.Progress) {
		rate := 0.0
		if p.Elapsed > 0 {
			rate = float64(p.Done) / p.Elapsed.Seconds()
		}
		log.Info("progress", "phase", p.Phase, "done", p.Done, "total", p.Total, "rows_per_s", fmt.Sprintf("%.1f", rate),
			"requests", p.Requests, "retries", p.Retries, "rate_limited", p.RateLimited, "elapsed", p.Elapsed.Round(time.Second))
	}
	_ = total
	return func() {}
}
