package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/readers"
	"github.com/paybatch/paybatch/reconcile"
)

func newRunCmd(e *env) *cobra.Command {
	var path, metrics string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run --config job.yaml",
		Short: "Run the nightly job: validate, submit, poll, reconcile, report and e-mail every new input",
		Long: `Run the job a config file describes, end to end, for every input file not
processed before (same content hash, every row final): validate → submit →
poll → reconcile against the ledger → write report.xlsx and exports → e-mail.

It is safe to run twice: a file already processed is skipped and said so, a
run that crashed resumes from the journal, and a run that finds nothing new
sends nothing and exits 0. Two overlapping runs cannot both submit: the
second exits with code 4.`,
		Example: `  SMARTRETRY_API_KEY=... paybatch run --config /etc/paybatch/refunds.yaml
  # crontab: 15 2 * * *  paybatch run --config /etc/paybatch/refunds.yaml --log-format json --quiet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := loadJobConfig(path)
			if err != nil {
				return paybatch.Exit(paybatch.ExitUsage, err)
			}
			if metrics != "" {
				plan.MetricsFile = metrics
			}
			out, err := runJob(cmd.Context(), e, plan)
			if asJSON && out != nil {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(out); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "job file (YAML); see testdata/job.yaml")
	cmd.Flags().StringVar(&metrics, "metrics-file", "", "write Prometheus text-format metrics here (overrides the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run's outcome as JSON on stdout")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// jobOutcome is what one run did, printed with --json.
type jobOutcome struct {
	Processed  []string          `json:"processed"`
	Skipped    []string          `json:"skipped"`
	Refused    []string          `json:"refused"` // files with rejected rows, not submitted
	Submitted  int               `json:"submitted"`
	Summary    *paybatch.Summary `json:"summary,omitempty"`
	Report     string            `json:"report,omitempty"`
	Exports    []string          `json:"exports,omitempty"`
	Emailed    []string          `json:"emailed,omitempty"`
	Exceptions int64             `json:"exceptions"`
}

// runJob runs one job plan end to end. The error carries the exit code:
// nil (0) when everything matched or there was nothing new, ExitExceptions
// when the run finished with exceptions.
func runJob(ctx context.Context, e *env, plan *jobPlan) (*jobOutcome, error) {
	start := e.now()
	out := &jobOutcome{Processed: []string{}, Skipped: []string{}, Refused: []string{}}
	m := runMetrics{RowsByState: map[string]int64{}, MinorByCurr: map[string]int64{}}
	say := func(format string, args ...any) {
		if !e.quiet {
			fmt.Fprintf(e.stdout, format+"\n", args...)
		}
	}
	finish := func(err error) (*jobOutcome, error) {
		m.Duration = e.now().Sub(start)
		code := paybatch.CodeOf(err)
		m.Success = code == paybatch.ExitOK || code == paybatch.ExitExceptions
		if m.Success {
			m.LastSuccess = e.now()
		}
		if plan.MetricsFile != "" && code != paybatch.ExitLocked {
			if merr := writeMetricsFile(plan.MetricsFile, m); merr != nil {
				e.log.Error("metrics file not written", "path", plan.MetricsFile, "err", merr)
			}
		}
		return out, err
	}

	if err := os.MkdirAll(plan.Outputs, 0o755); err != nil {
		return finish(paybatch.Exit(paybatch.ExitUsage, fmt.Errorf("outputs: %w", err)))
	}
	unlock, err := lockJournal(plan.Journal)
	if err != nil {
		return finish(err)
	}
	defer unlock()

	// Credentials: the job names the variables; the provider client reads
	// the standard names, so map them.
	jobEnv := *e
	jobEnv.getenv = func(k string) string {
		switch k {
		case envSmartRetryKey, envSmarterPayTok:
			return e.getenv(plan.SecretEnv)
		case envSmartRetryURL, envSmarterPayURL:
			return e.getenv(plan.BaseURLEnv)
		}
		return e.getenv(k)
	}

	inputs := plan.Inputs // expanded when the job file was loaded

	j, err := openJournal(ctx, plan.Journal)
	if err != nil {
		return finish(err)
	}
	journalOpen := true
	defer func() {
		if journalOpen {
			j.Close()
		}
	}()

	var todo []string
	for _, in := range inputs {
		sum, err := fileSHA256(in)
		if err != nil {
			return finish(paybatch.Exit(paybatch.ExitUsage, err))
		}
		done, err := j.InputProcessed(ctx, in, sum)
		if err != nil {
			return finish(paybatch.Exit(paybatch.ExitAborted, err))
		}
		if done {
			say("skipped %s: already processed (same content, every row final)", in)
			out.Skipped = append(out.Skipped, in)
			m.FilesSkipped++
			continue
		}
		todo = append(todo, in)
	}
	if counts, err := j.Counts(ctx); err == nil {
		for _, c := range counts {
			m.RowsByState[string(c.State)] += int64(c.Rows)
		}
	}
	if len(todo) == 0 {
		say("nothing new: %d input file(s), all already processed; nothing sent", len(inputs))
		return finish(nil)
	}

	cfg, err := plan.engineConfig(e)
	if err != nil {
		return finish(paybatch.Exit(paybatch.ExitUsage, err))
	}
	pacer := pipeline.NewPacer(cfg.Limits())
	cfg.Pacer = pacer
	client, err := newProvider(&jobEnv, plan.Provider, pacer)
	if err != nil {
		return finish(paybatch.Exit(paybatch.ExitUsage, err))
	}
	opts := readers.Options{Kind: plan.Kind, Sheet: plan.Sheet, DecimalComma: plan.DecimalComma, Now: e.now}
	if plan.Mapping != "" {
		if opts.Aliases, err = loadMappingFile(plan.Mapping); err != nil {
			return finish(paybatch.Exit(paybatch.ExitUsage, err))
		}
	}

	run := paybatch.RunInfo{Provider: plan.Provider, Kind: plan.Kind, Started: start, Version: version}
	var rejects []paybatch.RowError
	exceptions := false
	for _, in := range todo {
		rep, err := readers.Validate(ctx, []string{in}, opts)
		if err != nil {
			// One unusable file stops nothing else; it is reported and the
			// run ends with exit 2 after the other files.
			e.log.Error("input refused", "file", in, "err", err)
			out.Refused = append(out.Refused, in)
			exceptions = true
			continue
		}
		run.Inputs = append(run.Inputs, rep.Files...)
		rejects = append(rejects, rep.Rejects...)
		if rep.Rejected > 0 && !plan.AllowPartial {
			say("refused %s: %d of %d rows rejected, nothing from this file submitted (allow_partial: false); see the report's Rejected sheet", in, rep.Rejected, rep.Rows)
			out.Refused = append(out.Refused, in)
			exceptions = true
			continue
		}
		if rep.Rejected > 0 {
			if err := j.RecordRejects(ctx, rejectsOf(rep.Rejects)); err != nil {
				return finish(paybatch.Exit(paybatch.ExitAborted, err))
			}
			exceptions = true
		}
		say("submitting %s: %d rows (%s)", in, rep.Valid, rep.Totals.String())
		stop := progressReporter(e, &cfg, rep.Valid)
		res, runErr := pipeline.Submit(ctx, j, client, validRows(ctx, []string{in}, opts, rep), cfg)
		stop()
		m.RateLimited += res.RateLimited
		m.Retries += res.Retries
		for _, t := range res.Totals {
			for c, amt := range t {
				m.MinorByCurr[c] += amt.Minor
			}
		}
		out.Submitted += res.New
		if runErr != nil {
			if errors.Is(runErr, pipeline.ErrAuth) {
				return finish(paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("%w; check $%s", runErr, plan.SecretEnv)))
			}
			return finish(paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("%s: %w; the journal is consistent: run again to resume", in, runErr)))
		}
		if res.ExitCode() == paybatch.ExitAborted {
			return finish(paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("%s: some rows are not finished (failed after retries or still pending at the poll deadline): run again to resume", in)))
		}
		for _, f := range rep.Files {
			if err := j.RecordInput(context.WithoutCancel(ctx), pipeline.Input{Path: f.Path, SHA256: f.SHA256, Rows: f.Rows, Kind: plan.Kind, Provider: plan.Provider}, e.now()); err != nil {
				return finish(paybatch.Exit(paybatch.ExitAborted, err))
			}
		}
		out.Processed = append(out.Processed, in)
	}
	if counts, err := j.Counts(ctx); err == nil {
		clear(m.RowsByState)
		for _, c := range counts {
			m.RowsByState[string(c.State)] += int64(c.Rows)
		}
	}
	if err := j.Close(); err != nil {
		return finish(paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("journal: %w", err)))
	}
	journalOpen = false

	sum, err := reconcileAndReport(ctx, e, plan, run, rejects, out)
	if err != nil {
		return finish(err)
	}
	out.Summary = &sum
	var total int64
	for _, ct := range sum.Categories {
		total += ct.Count
	}
	out.Exceptions = total - sum.Categories[paybatch.CatMatched].Count
	m.Exceptions = out.Exceptions
	if !e.quiet {
		printSummary(e.stdout, sum)
	}
	say("report: %s", out.Report)
	if len(out.Refused) > 0 && len(out.Processed) == 0 {
		return finish(paybatch.Exit(paybatch.ExitUsage, fmt.Errorf("no input could be submitted: %s", strings.Join(out.Refused, ", "))))
	}
	if exceptions || out.Exceptions > 0 {
		return finish(paybatch.Exit(paybatch.ExitExceptions, fmt.Errorf("finished with %d reconciliation exception(s)%s: see %s", out.Exceptions, refusedNote(out.Refused), out.Report)))
	}
	return finish(nil)
}

func refusedNote(refused []string) string {
	if len(refused) == 0 {
		return ""
	}
	return fmt.Sprintf(" and %d refused file(s)", len(refused))
}

// reconcileAndReport matches the journal with the ledger and writes the
// workbook, the exports and the e-mail.
func reconcileAndReport(ctx context.Context, e *env, plan *jobPlan, run paybatch.RunInfo, rejects []paybatch.RowError, out *jobOutcome) (paybatch.Summary, error) {
	var sum paybatch.Summary
	ledgerSum, err := fileSHA256(plan.Ledger)
	if err != nil {
		return sum, paybatch.Exit(paybatch.ExitUsage, fmt.Errorf("ledger: %w", err))
	}
	run.Ledger = &paybatch.InputFile{Path: plan.Ledger, SHA256: ledgerSum}

	// The reconciliation database is derived data, rebuilt every run: start
	// from no file, so one left truncated by a killed run cannot wedge the job.
	dbPath := filepath.Join(plan.Outputs, "reconcile.duckdb")
	for _, p := range []string{dbPath, dbPath + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return sum, paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("reconcile database: %w", err))
		}
	}
	opts := reconcile.Options{Path: dbPath, MemoryLimit: plan.MemoryLimit}
	if plan.Tolerance != "" {
		if opts.Tolerance, err = decimalOf(plan.Tolerance); err != nil {
			return sum, paybatch.Exit(paybatch.ExitUsage, fmt.Errorf("tolerance: %w", err))
		}
	}
	r, err := reconcile.Open(ctx, opts)
	if err != nil {
		return sum, paybatch.Exit(paybatch.ExitAborted, err)
	}
	defer r.Close()
	if err := r.LoadJournal(ctx, plan.Journal); err != nil {
		return sum, paybatch.Exit(paybatch.ExitAborted, err)
	}
	if err := r.LoadLedger(ctx, plan.Ledger, plan.LedgerSheet); err != nil {
		return sum, paybatch.Exit(paybatch.ExitUsage, err)
	}
	if sum, err = r.Run(ctx); err != nil {
		return sum, paybatch.Exit(paybatch.ExitAborted, err)
	}

	o := reportOutputs{XLSX: filepath.Join(plan.Outputs, "report.xlsx"), EmailTo: plan.EmailTo, MaxAttachment: plan.MaxAttachment}
	for _, x := range plan.Exports {
		switch x {
		case "csv":
			o.CSVDir = filepath.Join(plan.Outputs, "csv")
		case "parquet":
			o.ParquetDir = filepath.Join(plan.Outputs, "parquet")
		case "json":
			o.JSON = filepath.Join(plan.Outputs, "summary.json")
		}
	}
	out.Report = o.XLSX
	written, err := writeOutputs(ctx, e, r, run, sum, rejects, o)
	if err != nil {
		return sum, paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("%w (the journal is final; re-run reconcile to retry the outputs)", err))
	}
	out.Exports = written[1:]
	out.Emailed = plan.EmailTo
	return sum, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// engineConfig turns the job's limits into the engine's configuration.
func (p *jobPlan) engineConfig(e *env) (pipeline.Config, error) {
	ef := engineFlags{rate: p.Rate, statusRate: p.StatusRate, concurrency: p.Concurrency, pollDeadline: p.PollDeadline}
	cfg, err := ef.config(e, p.Provider)
	if err != nil {
		return cfg, err
	}
	cfg.Logger = e.log
	return cfg, nil
}

// loadMappingFile reads a header-mapping YAML file (see readers.LoadMapping).
func loadMappingFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	defer f.Close()
	m, err := readers.LoadMapping(f)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	return m, nil
}

func decimalOf(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil || d.IsNegative() {
		return decimal.Decimal{}, fmt.Errorf("%q is not a non-negative amount such as 0.01", s)
	}
	return d, nil
}
