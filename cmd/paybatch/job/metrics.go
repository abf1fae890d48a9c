package job

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/paybatch/paybatch/writers"
)

// runMetrics is what a run reports to node_exporter's textfile collector.
type runMetrics struct {
	RowsByState map[string]int64 // journal state → rows
	MinorByCurr map[string]int64 // currency → minor units submitted (exact integers)
	// Overflowed holds the currencies whose submitted sum passed int64:
	// their amount gauge is left out rather than written wrapped.
	Overflowed   map[string]bool
	RateLimited  int64 // 429 answers seen
	Retries      int64
	Duration     time.Duration
	Success      bool      // the run finished (with or without exceptions)
	LastSuccess  time.Time // set when Success
	Exceptions   int64
	FilesSkipped int64
}

// addMinor adds n minor units to currency c's submitted amount, checked:
// a sum past int64 marks the currency Overflowed instead of wrapping.
func (m *runMetrics) addMinor(c string, n int64) {
	if m.Overflowed[c] {
		return
	}
	s := m.MinorByCurr[c] + n
	if (s > m.MinorByCurr[c]) != (n > 0) && n != 0 {
		if m.Overflowed == nil {
			m.Overflowed = map[string]bool{}
		}
		m.Overflowed[c] = true
		delete(m.MinorByCurr, c)
		return
	}
	m.MinorByCurr[c] = s
}

// writeMetricsFile writes Prometheus text format with writers.WriteFileAtomic
// (synced temp file, then rename) so the collector never reads half a file.
// On a failed run, the last success time already in the file is kept.
func writeMetricsFile(path string, m runMetrics) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	rows := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paybatch_rows", Help: "Instructions in the journal by state after the last run."}, []string{"state"})
	amount := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paybatch_amount_minor_units", Help: "Amount submitted in the last run, in the currency's minor units (exact integer)."}, []string{"currency"})
	gauges := map[string]float64{
		"paybatch_rate_limited_total":         float64(m.RateLimited),
		"paybatch_retries_total":              float64(m.Retries),
		"paybatch_run_duration_seconds":       m.Duration.Seconds(),
		"paybatch_exceptions":                 float64(m.Exceptions),
		"paybatch_files_skipped":              float64(m.FilesSkipped),
		"paybatch_last_run_success":           b2f(m.Success),
		"paybatch_last_run_timestamp_seconds": float64(time.Now().Unix()),
	}
	help := map[string]string{
		"paybatch_rate_limited_total":         "429 answers from the provider during the last run.",
		"paybatch_retries_total":              "Request retries during the last run.",
		"paybatch_run_duration_seconds":       "Wall time of the last run.",
		"paybatch_exceptions":                 "Reconciliation exceptions (non-matched ids) in the last run.",
		"paybatch_files_skipped":              "Input files skipped as already processed.",
		"paybatch_last_run_success":           "1 if the last run finished, 0 if it aborted.",
		"paybatch_last_run_timestamp_seconds": "Unix time the last run ended.",
	}
	reg.MustRegister(rows, amount)
	for state, n := range m.RowsByState {
		rows.WithLabelValues(state).Set(float64(n))
	}
	for cur, n := range m.MinorByCurr {
		if m.Overflowed[cur] {
			continue
		}
		amount.WithLabelValues(cur).Set(float64(n))
	}
	for name, v := range gauges {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help[name]})
		g.Set(v)
		reg.MustRegister(g)
	}
	last := m.LastSuccess
	if !m.Success {
		last = previousLastSuccess(path)
	}
	if !last.IsZero() {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "paybatch_last_success_timestamp_seconds", Help: "Unix time of the last run that finished."})
		g.Set(float64(last.Unix()))
		reg.MustRegister(g)
	}
	families, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return writers.WriteFileAtomic(path, func(w io.Writer) error {
		for _, mf := range families {
			if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
				return err
			}
		}
		return nil
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// previousLastSuccess reads paybatch_last_success_timestamp_seconds from an
// existing metrics file, so a failed run does not erase it.
func previousLastSuccess(path string) time.Time {
	raw, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}
	}
	var ts float64
	for _, line := range strings.Split(string(raw), "\n") {
		if _, err := fmt.Sscanf(line, "paybatch_last_success_timestamp_seconds %g", &ts); err == nil {
			return time.Unix(int64(ts), 0)
		}
	}
	return time.Time{}
}
