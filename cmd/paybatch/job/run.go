package job

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/readers"
	"github.com/paybatch/paybatch/reconcile"
)

// Outcome is what one Run did (`paybatch run --json` prints it).
type Outcome struct {
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

// Run executes a job plan end to end for every input not processed before:
// validate → submit → poll → reconcile against the ledger → report.xlsx and
// exports → e-mail, and writes the metrics file. It returns nil when
// everything matched or there was nothing new; otherwise the error's kind
// says what happened (ErrExceptions when the run finished with exceptions).
// The Outcome is never nil.
func Run(ctx context.Context, d Deps, plan *Plan, creds Credentials) (*Outcome, error) {
	d.defaults()
	r := &runner{d: d, plan: plan, creds: creds, start: d.Now(),
		out: &Outcome{Processed: []string{}, Skipped: []string{}, Refused: []string{}},
		m:   runMetrics{RowsByState: map[string]int64{}, MinorByCurr: map[string]int64{}}}
	err := r.run(ctx)
	r.writeMetrics(err)
	return r.out, err
}

// runner is one Run in progress.
type runner struct {
	d     Deps
	plan  *Plan
	creds Credentials
	start time.Time
	out   *Outcome
	m     runMetrics

	info       paybatch.RunInfo    // inputs read, for the report
	rejects    []paybatch.RowError // validation rejects, for the report
	exceptions bool                // a file was refused or had rejects
	lock       *journal.Lock       // the journal's, held for the whole run
}

func (r *runner) run(ctx context.Context) error {
	if err := os.MkdirAll(r.plan.Outputs, 0o755); err != nil {
		return classifyIO(paybatch.ErrConfig, r.plan.Outputs, fmt.Errorf("outputs: %w", err))
	}
	lk, err := lockJournal(r.plan.Journal)
	if err != nil {
		return err
	}
	if lk != nil {
		defer lk.Release()
	}
	r.lock = lk

	r.info = paybatch.RunInfo{Provider: r.plan.Provider, Kind: r.plan.Kind, Started: r.start, Version: r.d.Version}
	sent, err := r.submitNew(ctx)
	if err != nil || !sent {
		return err
	}
	sum, err := r.reconcileAndReport(ctx)
	if err != nil {
		return err
	}
	return r.verdict(sum)
}

// submitNew submits every input not processed before. It reports false
// when there was nothing new.
func (r *runner) submitNew(ctx context.Context) (sent bool, err error) {
	j, err := openJournal(ctx, r.plan.Journal, r.lock)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := j.Close(); cerr != nil && err == nil {
			err = journalFailed(r.plan.Journal, cerr)
		}
	}()
	todo, err := r.newInputs(ctx, j)
	if err != nil {
		return false, err
	}
	r.countRows(ctx, j)
	if len(todo) == 0 {
		r.d.say("nothing new: %d input file(s), all already processed; nothing sent", len(r.plan.Inputs))
		return false, nil
	}
	s, err := r.newSender()
	if err != nil {
		return false, err
	}
	for _, in := range todo {
		if err := r.submitFile(ctx, j, s, in); err != nil {
			return false, err
		}
	}
	r.countRows(ctx, j)
	return true, nil
}

// newInputs returns the inputs whose content the journal has not seen
// through to the end.
func (r *runner) newInputs(ctx context.Context, j journal.Journal) ([]string, error) {
	var todo []string
	for _, in := range r.plan.Inputs {
		sum, err := readers.FileSHA256(ctx, in)
		if err != nil {
			return nil, classifyIO(paybatch.ErrInput, in, err)
		}
		done, err := j.InputProcessed(ctx, in, sum)
		if err != nil {
			return nil, journalFailed(r.plan.Journal, err)
		}
		if done {
			r.d.say("skipped %s: already processed (same content, every row final)", in)
			r.out.Skipped = append(r.out.Skipped, in)
			r.m.FilesSkipped++
			continue
		}
		todo = append(todo, in)
	}
	return todo, nil
}

// countRows records the journal's rows by state for the metrics file.
func (r *runner) countRows(ctx context.Context, j journal.Journal) {
	counts, err := j.Counts(ctx)
	if err != nil {
		return
	}
	clear(r.m.RowsByState)
	for _, c := range counts {
		r.m.RowsByState[string(c.State)] += int64(c.Rows)
	}
}

// sender is what every input of a run is sent with.
type sender struct {
	cfg    pipeline.Config
	client pipeline.Provider
	read   readers.Options
}

func (r *runner) newSender() (*sender, error) {
	eng, err := r.plan.Engine()
	if err != nil {
		return nil, paybatch.WithKind(paybatch.ErrConfig, err)
	}
	s := &sender{cfg: eng.config(&r.d, r.plan.Provider)}
	pacer := pipeline.NewPacer(s.cfg.Limits())
	s.cfg.Pacer = pacer
	if s.client, err = NewClient(r.plan.Provider, r.creds, pacer); err != nil {
		return nil, err
	}
	s.read = readers.Options{Kind: r.plan.Kind, Sheet: r.plan.Sheet, DecimalComma: r.plan.DecimalComma,
		Rules: pipeline.RulesFor(r.plan.Kind.Provider(), r.d.Now)}
	if r.plan.Mapping != "" {
		if s.read.Aliases, err = LoadMapping(r.plan.Mapping); err != nil {
			return nil, paybatch.WithKind(paybatch.ErrConfig, err)
		}
	}
	return s, nil
}

// submitFile validates one input and, unless it is refused, submits it.
// A refused file stops nothing else: it is reported and the run carries on.
func (r *runner) submitFile(ctx context.Context, j journal.Journal, s *sender, in string) error {
	rep, err := readers.Validate(ctx, []string{in}, s.read)
	if err != nil {
		if diskFull(err) {
			return errDiskFull(in)
		}
		r.d.Log.Error("input refused", "file", in, "err", err)
		r.refuse(in)
		return nil
	}
	r.info.Inputs = append(r.info.Inputs, rep.Files...)
	r.rejects = append(r.rejects, rep.Rejects...)
	if rep.Rejected > 0 && !r.plan.AllowPartial {
		r.d.say("refused %s: %d of %d rows rejected, nothing from this file submitted (allow_partial: false); see the report's Rejected sheet", in, rep.Rejected, rep.Rows)
		r.refuse(in)
		return nil
	}
	if rep.Rejected > 0 {
		if err := j.RecordRejects(ctx, rejectsOf(rep.Rejects)); err != nil {
			return journalFailed(r.plan.Journal, err)
		}
		r.exceptions = true
	}

	r.d.say("submitting %s: %d rows (%s)", in, rep.Valid, rep.Totals.String())
	cfg := s.cfg
	stop := r.d.progress(&cfg, rep.Valid)
	var res pipeline.Result
	runErr := underLease(ctx, j, r.plan.Provider, r.creds, func(ctx context.Context) (err error) {
		res, err = pipeline.Submit(ctx, j, s.client, validRows(ctx, []string{in}, s.read, rep), cfg)
		return err
	})
	stop()
	r.tally(res)
	if runErr != nil {
		return sendFailed(r.plan.Journal, r.creds, r.plan.Provider, fmt.Errorf("%s: %w", in, runErr), "run again to resume")
	}
	if verdict(res) == paybatch.ErrResumable {
		return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("%s: some rows are not finished (failed after retries or still pending at the poll deadline): run again to resume", in))
	}
	if err := recordInputs(ctx, r.d, j, rep, r.plan.Kind); err != nil {
		return err
	}
	r.out.Processed = append(r.out.Processed, in)
	return nil
}

func (r *runner) refuse(in string) {
	r.out.Refused = append(r.out.Refused, in)
	r.exceptions = true
}

// tally adds one engine result to the run's outcome and metrics.
func (r *runner) tally(res pipeline.Result) {
	r.m.RateLimited += res.RateLimited
	r.m.Retries += res.Retries
	for _, t := range res.Totals {
		for c, amt := range t {
			r.m.MinorByCurr[c] += amt.Minor
		}
	}
	r.out.Submitted += res.New
}

// reconcileAndReport matches the journal with the ledger and writes the
// workbook, the exports and the e-mail.
func (r *runner) reconcileAndReport(ctx context.Context) (paybatch.Summary, error) {
	var sum paybatch.Summary
	ledgerSum, err := readers.FileSHA256(ctx, r.plan.Ledger)
	if err != nil {
		return sum, classifyIO(paybatch.ErrInput, r.plan.Ledger, fmt.Errorf("ledger: %w", err))
	}
	r.info.Ledger = &paybatch.InputFile{Path: r.plan.Ledger, SHA256: ledgerSum}
	// the journal is reconciled as the provider side (its rows counted by
	// WriteReport; not hashed: it grows with every run)
	r.info.ProviderSide = &paybatch.InputFile{Path: r.plan.Journal, Role: "journal"}

	rec, err := r.openReconciler(ctx)
	if err != nil {
		return sum, err
	}
	defer rec.Close()
	if err := LoadJournal(ctx, rec, r.plan.Journal); err != nil {
		return sum, classifyIO(paybatch.ErrResumable, r.plan.Outputs, err)
	}
	if err := rec.LoadLedger(ctx, r.plan.Ledger, r.plan.LedgerSheet); err != nil {
		return sum, classifyIO(paybatch.ErrInput, r.plan.Ledger, err)
	}
	if sum, err = rec.Run(ctx); err != nil {
		return sum, classifyIO(paybatch.ErrResumable, r.plan.Outputs, err)
	}
	o := r.outputs()
	r.out.Report = o.XLSX
	written, err := WriteReport(ctx, r.d, rec, r.info, sum, r.rejects, o)
	if err != nil {
		if k := paybatch.KindOf(err); k == paybatch.ErrConfig {
			return sum, err
		}
		return sum, classifyIO(paybatch.ErrResumable, r.plan.Outputs, fmt.Errorf("%w (the journal is final; re-run reconcile to retry the outputs)", err))
	}
	r.out.Exports = written[1:]
	r.out.Emailed = r.plan.EmailTo
	r.out.Summary = &sum
	r.out.Exceptions = Exceptions(sum)
	r.m.Exceptions = r.out.Exceptions
	return sum, nil
}

// openReconciler opens a fresh reconciliation database in the outputs. It
// is derived data, rebuilt every run: starting from no file means one left
// truncated by a killed run cannot wedge the job.
func (r *runner) openReconciler(ctx context.Context) (*reconcile.Reconciler, error) {
	dbPath := filepath.Join(r.plan.Outputs, "reconcile.duckdb")
	for _, p := range []string{dbPath, dbPath + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, classifyIO(paybatch.ErrResumable, r.plan.Outputs, fmt.Errorf("reconcile database: %w", err))
		}
	}
	opts := reconcile.Options{Path: dbPath, MemoryLimit: r.plan.MemoryLimit}
	if r.plan.Tolerance != "" {
		var err error
		if opts.Tolerance, err = parseTolerance(r.plan.Tolerance); err != nil {
			return nil, paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("tolerance: %w", err))
		}
	}
	rec, err := reconcile.Open(ctx, opts)
	return rec, classifyIO(paybatch.ErrResumable, r.plan.Outputs, err)
}

// outputs says where this job's report and exports go.
func (r *runner) outputs() Outputs {
	o := Outputs{XLSX: filepath.Join(r.plan.Outputs, "report.xlsx"), EmailTo: r.plan.EmailTo, MaxAttachment: r.plan.MaxAttachment}
	for _, x := range r.plan.Exports {
		switch x {
		case "csv":
			o.CSVDir = filepath.Join(r.plan.Outputs, "csv")
		case "parquet":
			o.ParquetDir = filepath.Join(r.plan.Outputs, "parquet")
		case "json":
			o.JSON = filepath.Join(r.plan.Outputs, "summary.json")
		}
	}
	return o
}

// verdict is the run's ending once the report is out.
func (r *runner) verdict(sum paybatch.Summary) error {
	if len(r.out.Refused) > 0 && len(r.out.Processed) == 0 {
		return paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("no input could be submitted: %s", strings.Join(r.out.Refused, ", ")))
	}
	if r.exceptions || r.out.Exceptions > 0 {
		return paybatch.WithKind(paybatch.ErrExceptions, fmt.Errorf("finished with %d reconciliation exception(s)%s: see %s", r.out.Exceptions, refusedNote(r.out.Refused), r.out.Report))
	}
	return nil
}

func refusedNote(refused []string) string {
	if len(refused) == 0 {
		return ""
	}
	return fmt.Sprintf(" and %d refused file(s)", len(refused))
}

// writeMetrics writes the metrics file, when the job has one, unless the
// run did nothing because another held the journal.
func (r *runner) writeMetrics(err error) {
	k := paybatch.KindOf(err)
	if r.plan.MetricsFile == "" || k == paybatch.ErrLocked {
		return
	}
	now := r.d.Now()
	r.m.Duration = now.Sub(r.start)
	r.m.Success = err == nil || k == paybatch.ErrExceptions
	if r.m.Success {
		r.m.LastSuccess = now
	}
	if merr := writeMetricsFile(r.plan.MetricsFile, r.m); merr != nil {
		r.d.Log.Error("metrics file not written", "path", r.plan.MetricsFile, "err", merr)
	}
}

// LoadMapping reads a header-mapping YAML file (see readers.LoadMapping).
func LoadMapping(path string) (map[string]string, error) {
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

// parseTolerance reads a non-negative decimal amount such as 0.01.
func parseTolerance(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil || d.IsNegative() {
		return decimal.Decimal{}, fmt.Errorf("%q is not a non-negative amount such as 0.01", s)
	}
	return d, nil
}
