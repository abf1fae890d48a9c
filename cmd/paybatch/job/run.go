package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/readers"
	"github.com/paybatch/paybatch/reconcile"
	"github.com/paybatch/paybatch/writers"
)

// Outcome is what one Run did (`paybatch run --json` prints it).
type Outcome struct {
	Processed  []string          `json:"processed"`
	Skipped    []string          `json:"skipped"`
	Refused    []string          `json:"refused"` // files with rejected rows, not submitted
	Submitted  int               `json:"submitted"`
	Summary    *paybatch.Summary `json:"summary,omitempty"`
	Report     string            `json:"report,omitempty"`     // report.xlsx: the latest run's report
	RunReport  string            `json:"run_report,omitempty"` // the same, kept under the run's dated name
	Exports    []string          `json:"exports,omitempty"`
	Emailed    []string          `json:"emailed,omitempty"`
	Exceptions int64             `json:"exceptions"`
	// Runs are the ids of the runs this call carried to their end (or
	// stopped in): unfinished ones first, resumed, then the new one.
	Runs []string `json:"runs,omitempty"`
}

// Run executes a job plan end to end for every input not processed before:
// validate → submit → poll → reconcile against the ledger → report.xlsx and
// exports → e-mail, and writes the metrics file.
//
// A run is done when its report is delivered. The journal records each run
// (its inputs, then submitted, reconciled, report written, e-mailed,
// finished); a run that was stopped at any step — killed, out of disk, SMTP
// down — is carried on by the next Run from the step it had not finished,
// before any new input is taken, so each input gets one report and one
// e-mail. An input is "already processed" only once its run has finished.
// Each run's report covers that run's inputs plus any row of an earlier run
// still open, and is kept as report-RUNID.xlsx beside report.xlsx (the
// latest). The metrics file records a success only when every run is done.
//
// It returns nil when everything matched or there was nothing new;
// otherwise the error's kind says what happened (ErrExceptions when the run
// finished with exceptions). The Outcome is never nil.
func Run(ctx context.Context, d Deps, plan *Plan, creds Credentials) (*Outcome, error) {
	return runOn(ctx, d, plan, creds, nil)
}

// HeldJournal is a journal a process holds open for its life (paybatch
// serve's), which a job can run on in the same process (RunOn).
type HeldJournal interface {
	journal.Journal
	// Snapshot writes a new DuckDB journal file at path holding the rows
	// (latest states) and rejects of sourceFiles: what reconcile reads
	// while the holder keeps the journal open.
	Snapshot(ctx context.Context, path string, sourceFiles ...string) error
}

// RunOn is Run on a journal this process already holds (serve --schedule
// on the server's own DuckDB journal, which nobody else can open):
// plan.Journal names it, nothing is locked, opened or closed, and the
// report reconciles a snapshot of the job's rows. The caller makes sure no
// other run set works the journal meanwhile (one per journal).
func RunOn(ctx context.Context, d Deps, plan *Plan, creds Credentials, j HeldJournal) (*Outcome, error) {
	return runOn(ctx, d, plan, creds, j)
}

func runOn(ctx context.Context, d Deps, plan *Plan, creds Credentials, held HeldJournal) (*Outcome, error) {
	d.defaults()
	r := &runner{d: d, plan: plan, creds: creds, start: d.Now(), held: held,
		out: &Outcome{Processed: []string{}, Skipped: []string{}, Refused: []string{}},
		m:   runMetrics{RowsByState: map[string]int64{}, MinorByCurr: map[string]int64{}}}
	err := r.run(ctx)
	for _, in := range r.inputs {
		in.Close()
	}
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

	lock   *journal.Lock     // the journal's, held for the whole call
	held   HeldJournal       // the journal the caller holds (RunOn), else nil
	j      journal.Journal   // the journal while open (closed while reconciling)
	sender *sender           // made on first use
	ids    map[string]bool   // run ids in the journal
	reps   map[string]*input // inputs validated before their run started
	// inputs are the input files opened so far, each once per Run (input),
	// with their SHA-256 once computed
	inputs map[string]readers.Input
	sums   map[string]string
	done   bool // every run is finished: the metrics' success
}

// input is one input file of a run as read now.
type input struct {
	rec journal.RunInput
	rep *readers.Report // nil: refused as unreadable, or not readable as recorded
	err error           // why the file was refused
}

// carried is what one run gathers on its way to the report.
type carried struct {
	rec        journal.RunRecord
	info       paybatch.RunInfo    // inputs read, for the report
	rejects    []paybatch.RowError // validation rejects, for the report
	exceptions bool                // a file was refused or had rejects
	processed  []string
	refused    []string
}

func (r *runner) run(ctx context.Context) (err error) {
	if err := os.MkdirAll(r.plan.Outputs, 0o755); err != nil {
		return classifyIO(paybatch.ErrConfig, r.plan.Outputs, fmt.Errorf("outputs: %w", err))
	}
	if r.held == nil {
		lk, err := lockJournal(r.plan.Journal)
		if err != nil {
			return err
		}
		if lk != nil {
			defer lk.Release()
		}
		r.lock = lk
	}
	defer func() {
		if cerr := r.closeJournal(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := r.openJournal(ctx); err != nil {
		return err
	}
	all, err := r.j.Runs(ctx, journal.RunQuery{})
	if err != nil {
		return journalFailed(r.plan.Journal, err)
	}
	r.ids = map[string]bool{}
	var unfinished []journal.RunRecord
	for _, rr := range all {
		r.ids[rr.ID] = true
		if !rr.Done() && r.ownRun(rr) {
			unfinished = append(unfinished, rr)
		}
	}
	slices.Reverse(unfinished) // oldest first
	todo, err := r.newInputs(ctx, all)
	if err != nil {
		return err
	}
	r.countRows(ctx)
	if len(unfinished) == 0 && len(todo) == 0 {
		r.d.say("nothing new: %d input file(s), all already processed; nothing sent", len(r.plan.Inputs))
		r.done = true
		return nil
	}

	var verdicts []error
	for _, rr := range unfinished {
		r.d.say("run %s did not finish (%s): carrying it on", rr.ID, nextStep(rr))
		v, err := r.carry(ctx, rr)
		if err != nil {
			return err
		}
		verdicts = append(verdicts, v)
	}
	if len(todo) > 0 {
		rr, err := r.startRun(ctx, todo)
		if err != nil {
			return err
		}
		v, err := r.carry(ctx, rr)
		if err != nil {
			return err
		}
		verdicts = append(verdicts, v)
	}
	r.done = true
	return worst(verdicts)
}

// worst is the verdict of several runs: an input error (nothing could be
// submitted) over exceptions over a clean run.
func worst(vs []error) error {
	var out error
	for _, v := range vs {
		switch {
		case v == nil:
		case paybatch.KindOf(v) == paybatch.ErrInput:
			return v
		case out == nil:
			out = v
		}
	}
	return out
}

// shared reports whether the journal is shared with other jobs and
// processes (PostgreSQL), or with the process holding it (RunOn): its
// runs and open rows are not all this job's.
func (r *runner) shared() bool { return r.held != nil || postgres.IsURL(r.plan.Journal) }

// ownRun reports whether run rr is this job's to carry on: on a journal of
// its own, every run; on a shared journal, a run that took one of this
// job's inputs (another job's unfinished run is its own to finish).
func (r *runner) ownRun(rr journal.RunRecord) bool {
	if !r.shared() {
		return true
	}
	for _, in := range rr.Inputs {
		if slices.Contains(r.plan.Inputs, in.Path) {
			return true
		}
	}
	return false
}

// nextStep names the first step run rr had not finished.
func nextStep(rr journal.RunRecord) string {
	switch {
	case rr.Submitted.IsZero():
		return "stopped while submitting"
	case rr.Reconciled.IsZero():
		return "stopped before reconciling"
	case rr.ReportWritten.IsZero():
		return "stopped before its report was written"
	case rr.Emailed.IsZero():
		return "stopped before its report was e-mailed"
	}
	return "stopped before it was recorded as finished"
}

func (r *runner) openJournal(ctx context.Context) error {
	if r.j != nil {
		return nil
	}
	if r.held != nil {
		r.j = r.held
		return nil
	}
	j, err := openJournal(ctx, r.plan.Journal, r.lock)
	if err != nil {
		return err
	}
	r.j = j
	return nil
}

func (r *runner) closeJournal() error {
	if r.j == nil {
		return nil
	}
	var err error
	if r.held != nil { // the holder closes it: make this job's changes visible
		err = r.j.Flush(context.Background())
	} else {
		err = r.j.Close()
	}
	r.j = nil
	if err != nil {
		return journalFailed(r.plan.Journal, err)
	}
	return nil
}

// mark records that run id reached step (the journal is opened if closed).
func (r *runner) mark(ctx context.Context, id string, step journal.Step, detail string) error {
	if err := r.openJournal(ctx); err != nil {
		return err
	}
	if err := r.j.MarkRun(context.WithoutCancel(ctx), id, step, r.d.Now(), detail); err != nil {
		return journalFailed(r.plan.Journal, err)
	}
	return nil
}

// newRunID is the id of a run starting now: the start time, with a suffix
// when the journal holds a run with that id already.
func (r *runner) newRunID() string {
	base := r.start.UTC().Format("2006-01-02T150405Z")
	id := base
	for n := 2; r.ids[id]; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	return id
}

// startRun validates the new inputs and records a run that takes them in.
func (r *runner) startRun(ctx context.Context, todo []string) (journal.RunRecord, error) {
	s, err := r.getSender()
	if err != nil {
		return journal.RunRecord{}, err
	}
	rs := journal.RunStart{ID: r.newRunID(), Started: r.d.Now()}
	r.reps = map[string]*input{}
	for _, path := range todo {
		in, err := r.readInput(ctx, s, path)
		if err != nil {
			return journal.RunRecord{}, err
		}
		r.reps[path] = in
		rs.Inputs = append(rs.Inputs, in.rec)
	}
	for tries := 1; ; tries++ {
		err := r.j.StartRun(context.WithoutCancel(ctx), rs)
		if err == nil {
			break
		}
		if !errors.Is(err, journal.ErrRunExists) || tries == 100 {
			return journal.RunRecord{}, journalFailed(r.plan.Journal, err)
		}
		// another process sharing the journal started a run in the same second
		r.ids[rs.ID] = true
		rs.ID = r.newRunID()
	}
	id := rs.ID
	r.ids[id] = true
	rec, err := r.j.Run(ctx, id)
	if err != nil {
		return journal.RunRecord{}, journalFailed(r.plan.Journal, err)
	}
	return rec, nil
}

// input returns the input file at path, opened on first use (Deps.Open):
// every later read — hash, validation, sending — goes through that handle,
// so what is sent is what was validated, and a path is opened once.
func (r *runner) input(path string) (readers.Input, error) {
	if in, ok := r.inputs[path]; ok {
		return in, nil
	}
	open := r.d.Open
	if open == nil {
		open = os.Open
	}
	f, err := open(path)
	if err != nil {
		return readers.Input{}, fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	in, err := readers.FileInput(path, f)
	if err != nil {
		f.Close()
		return readers.Input{}, err
	}
	if r.inputs == nil {
		r.inputs = map[string]readers.Input{}
	}
	r.inputs[path] = in
	return in, nil
}

// sha256 is the input file's SHA-256, read through its one handle.
func (r *runner) sha256(ctx context.Context, path string) (string, error) {
	if sum, ok := r.sums[path]; ok {
		return sum, nil
	}
	in, err := r.input(path)
	if err != nil {
		return "", err
	}
	sum, err := in.SHA256(ctx)
	if err != nil {
		return "", err
	}
	if r.sums == nil {
		r.sums = map[string]string{}
	}
	r.sums[path] = sum
	return sum, nil
}

// readInput validates one input file as it is now.
func (r *runner) readInput(ctx context.Context, s *sender, path string) (*input, error) {
	sum, err := r.sha256(ctx, path)
	if err != nil {
		return nil, classifyIO(paybatch.ErrInput, path, err)
	}
	in := &input{rec: journal.RunInput{Path: path, SHA256: sum}}
	h, err := r.input(path)
	if err != nil {
		return nil, classifyIO(paybatch.ErrInput, path, err)
	}
	rep, err := readers.ValidateInputs(ctx, []readers.Input{h}, s.read)
	switch {
	case err != nil && diskFull(err):
		return nil, errDiskFull(path)
	case err != nil && ctx.Err() != nil:
		return nil, paybatch.WithKind(paybatch.ErrResumable, err)
	case err != nil:
		in.err = err
	default:
		in.rep, in.rec.Rows = rep, rep.Rows
	}
	return in, nil
}

// carry takes run rr from the first step it has not finished to its end:
// submit (and poll) whatever of its inputs is not final, reconcile, write
// the report, e-mail it, and record each step as it is reached. It returns
// the run's verdict, or an error when it stopped before the end (the run
// then stays unfinished, and the next Run carries it on).
func (r *runner) carry(ctx context.Context, rr journal.RunRecord) (verdict error, err error) {
	c := &carried{rec: rr, info: paybatch.RunInfo{Provider: r.plan.Provider, Kind: r.plan.Kind, Started: rr.Started, Version: r.d.Version}}
	r.out.Runs = append(r.out.Runs, rr.ID)
	if err := r.openJournal(ctx); err != nil {
		return nil, err
	}
	for _, in := range rr.Inputs {
		if err := r.carryInput(ctx, c, in); err != nil {
			return nil, err
		}
	}
	r.countRows(ctx)
	r.d.checkpoint("submit")
	if err := r.mark(ctx, rr.ID, journal.StepSubmitted, ""); err != nil {
		return nil, err
	}
	if err := r.closeJournal(); err != nil { // reconcile ATTACHes it read-only
		return nil, err
	}
	sum, err := r.reconcileAndReport(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := r.mark(ctx, rr.ID, journal.StepFinished, ""); err != nil {
		return nil, err
	}
	r.out.Processed = append(r.out.Processed, c.processed...)
	r.out.Refused = append(r.out.Refused, c.refused...)
	return r.verdict(c, sum), nil
}

// carryInput reads one input of a run again and submits what of it is not
// final. An input that changed or went away since the run started is
// reported as the run recorded it, from what the journal holds.
func (r *runner) carryInput(ctx context.Context, c *carried, rec journal.RunInput) error {
	s, err := r.getSender()
	if err != nil {
		return err
	}
	in := r.reps[rec.Path]
	if in == nil || in.rec.SHA256 != rec.SHA256 {
		sum, err := r.sha256(ctx, rec.Path)
		if err != nil || sum != rec.SHA256 {
			r.d.Log.Warn("run input changed or missing since the run started; its report shows what the journal holds", "file", rec.Path, "run", c.rec.ID)
			r.d.say("warning: %s changed or went away since run %s started; nothing more is sent from it", rec.Path, c.rec.ID)
			c.info.Inputs = append(c.info.Inputs, paybatch.InputFile{Path: rec.Path, SHA256: rec.SHA256, Rows: rec.Rows})
			return nil
		}
		if in, err = r.readInput(ctx, s, rec.Path); err != nil {
			return err
		}
	}
	if in.rep == nil {
		r.d.Log.Error("input refused", "file", rec.Path, "err", in.err)
		r.d.say("refused %s: %v", rec.Path, in.err)
		c.info.Inputs = append(c.info.Inputs, paybatch.InputFile{Path: rec.Path, SHA256: rec.SHA256})
		c.refused, c.exceptions = append(c.refused, rec.Path), true
		return nil
	}
	rep := in.rep
	c.info.Inputs = append(c.info.Inputs, rep.Files...)
	c.rejects = append(c.rejects, rep.Rejects...)
	if rep.Rejected > 0 && !r.plan.AllowPartial {
		r.d.say("refused %s: %d of %d rows rejected, nothing from this file submitted (allow_partial: false); see the report's Rejected sheet", rec.Path, rep.Rejected, rep.Rows)
		c.refused, c.exceptions = append(c.refused, rec.Path), true
		return nil
	}
	if rep.Rejected > 0 {
		c.exceptions = true
	}
	done, err := r.j.InputProcessed(ctx, rec.Path, rec.SHA256)
	if err != nil {
		return journalFailed(r.plan.Journal, err)
	}
	if !done {
		if err := r.submitFile(ctx, s, rec.Path, rep); err != nil {
			return err
		}
	}
	c.processed = append(c.processed, rec.Path)
	return nil
}

// newInputs returns the inputs that no run has taken in: an input (same
// path and content) of a finished run is skipped as already processed, one
// of an unfinished run is carried on with that run. A file processed before
// runs were recorded is skipped when every row from it is final.
func (r *runner) newInputs(ctx context.Context, runs []journal.RunRecord) ([]string, error) {
	type file struct{ path, sha string }
	inRun := map[file]journal.RunRecord{}
	for _, rr := range runs {
		for _, in := range rr.Inputs {
			if _, seen := inRun[file{in.Path, in.SHA256}]; !seen { // newest run first
				inRun[file{in.Path, in.SHA256}] = rr
			}
		}
	}
	var todo []string
	for _, in := range r.plan.Inputs {
		sum, err := r.sha256(ctx, in)
		if err != nil {
			return nil, classifyIO(paybatch.ErrInput, in, err)
		}
		if rr, ok := inRun[file{in, sum}]; ok {
			if rr.Done() {
				r.d.say("skipped %s: already processed (same content, run %s finished and its report delivered)", in, rr.ID)
				r.out.Skipped = append(r.out.Skipped, in)
				r.m.FilesSkipped++
			}
			continue
		}
		done, err := r.j.InputProcessed(ctx, in, sum)
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
func (r *runner) countRows(ctx context.Context) {
	counts, err := r.j.Counts(ctx)
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

func (r *runner) getSender() (*sender, error) {
	if r.sender != nil {
		return r.sender, nil
	}
	eng, err := r.plan.Engine()
	if err != nil {
		return nil, paybatch.WithKind(paybatch.ErrConfig, err)
	}
	s := &sender{cfg: eng.config(&r.d, r.plan.Provider)}
	pacer := newPacer(&r.d, &s.cfg)
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
	r.sender = s
	return s, nil
}

// submitFile submits the valid rows of one validated input (resuming
// whatever an earlier attempt left unfinished) and polls them.
func (r *runner) submitFile(ctx context.Context, s *sender, in string, rep *readers.Report) error {
	if rep.Rejected > 0 {
		if err := r.j.RecordRejects(ctx, rejectsOf(rep.Rejects)); err != nil {
			return journalFailed(r.plan.Journal, err)
		}
	}
	r.d.say("submitting %s: %d rows (%s)", in, rep.Valid, rep.Totals.String())
	cfg := s.cfg
	stop := r.d.progress(&cfg, rep.Valid)
	var res pipeline.Result
	runErr := underLease(ctx, r.j, r.plan.Provider, r.creds, func(ctx context.Context) (err error) {
		h, err := r.input(in)
		if err != nil {
			return err
		}
		res, err = pipeline.Submit(ctx, r.j, s.client, validRows(ctx, []readers.Input{h}, s.read, rep), cfg)
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
	return recordInputs(ctx, r.d, r.j, rep, r.plan.Kind)
}

// tally adds one engine result to the run's outcome and metrics.
func (r *runner) tally(res pipeline.Result) {
	r.m.RateLimited += res.RateLimited
	r.m.Retries += res.Retries
	for _, t := range res.Totals {
		for c, amt := range t {
			r.m.addMinor(c, amt.Minor)
		}
	}
	r.out.Submitted += res.New
}

// reconcileAndReport matches the run's rows (and every row still open)
// with the ledger, writes the workbook and the exports, and e-mails the
// report — each step recorded once reached, and skipped when an earlier
// attempt of the run recorded it.
func (r *runner) reconcileAndReport(ctx context.Context, c *carried) (paybatch.Summary, error) {
	var sum paybatch.Summary
	ledgerSum, err := readers.FileSHA256(ctx, r.plan.Ledger)
	if err != nil {
		return sum, classifyIO(paybatch.ErrInput, r.plan.Ledger, fmt.Errorf("ledger: %w", err))
	}
	c.info.Ledger = &paybatch.InputFile{Path: r.plan.Ledger, SHA256: ledgerSum}
	// the journal is reconciled as the provider side (its rows counted by
	// withLines; not hashed: it grows with every run)
	c.info.ProviderSide = &paybatch.InputFile{Path: r.plan.Journal, Role: "journal"}
	c.info.ID = c.rec.ID

	rec, err := r.openReconciler(ctx)
	if err != nil {
		return sum, err
	}
	defer rec.Close()
	scope := reconcile.JournalScope{Since: c.rec.Started}
	for _, in := range c.rec.Inputs {
		scope.Files = append(scope.Files, in.Path)
	}
	if r.shared() { // the open rows of this job's inputs only, not other processes' in flight
		scope.Open = append(slices.Clone(scope.Files), r.plan.Inputs...)
	}
	if err := r.loadJournal(ctx, rec, scope); err != nil {
		return sum, classifyIO(paybatch.ErrResumable, r.plan.Outputs, err)
	}
	if err := rec.LoadLedger(ctx, r.plan.Ledger, r.plan.LedgerSheet); err != nil {
		return sum, classifyIO(paybatch.ErrInput, r.plan.Ledger, err)
	}
	if sum, err = rec.Run(ctx); err != nil {
		return sum, classifyIO(paybatch.ErrResumable, r.plan.Outputs, err)
	}
	c.info = withLines(rec, c.info)
	r.d.checkpoint("reconcile")
	if err := r.mark(ctx, c.rec.ID, journal.StepReconciled, ""); err != nil {
		return sum, err
	}
	o := r.outputs(c.rec.ID)
	if c.rec.ReportWritten.IsZero() {
		written, err := writeFiles(ctx, rec, c.info, sum, c.rejects, o)
		if err == nil {
			err = writers.WriteFileAtomic(SummaryPath(o.XLSX), func(w io.Writer) error { return EncodeJSON(w, sum) })
		}
		if err == nil {
			err = r.copyLatest(o.XLSX)
		}
		if err != nil {
			if k := paybatch.KindOf(err); k == paybatch.ErrConfig {
				return sum, err
			}
			return sum, classifyIO(paybatch.ErrResumable, r.plan.Outputs, fmt.Errorf("%w (the journal is final; run again to write the report)", err))
		}
		r.out.Exports = written[1:]
		r.d.checkpoint("report")
		if err := r.mark(ctx, c.rec.ID, journal.StepReportWritten, o.XLSX); err != nil {
			return sum, err
		}
	} else if c.rec.ReportPath != "" {
		o.XLSX = c.rec.ReportPath
		r.d.say("run %s: report already written: %s", c.rec.ID, o.XLSX)
	}
	r.out.Report, r.out.RunReport = filepath.Join(r.plan.Outputs, "report.xlsx"), o.XLSX
	if len(o.EmailTo) > 0 && c.rec.Emailed.IsZero() {
		r.d.checkpoint("email")
		if err := mailReport(ctx, r.d, c.info, sum, o); err != nil {
			if k := paybatch.KindOf(err); k == paybatch.ErrConfig {
				return sum, err
			}
			return sum, classifyIO(paybatch.ErrResumable, r.plan.Outputs, fmt.Errorf("%w (the report is written; run again to e-mail it)", err))
		}
		if err := r.mark(ctx, c.rec.ID, journal.StepEmailed, ""); err != nil {
			return sum, err
		}
		r.out.Emailed = r.plan.EmailTo
	}
	r.out.Summary = &sum
	r.out.Exceptions = Exceptions(sum)
	r.m.Exceptions += r.out.Exceptions
	return sum, nil
}

// loadJournal loads the journal's rows scope covers into rec: the journal
// itself (a DuckDB file ATTACHed read-only, PostgreSQL copied), or, on a
// journal the caller holds open (RunOn), a snapshot of the rows of the
// files scope names (scope.Open).
func (r *runner) loadJournal(ctx context.Context, rec *reconcile.Reconciler, scope reconcile.JournalScope) error {
	if r.held == nil {
		return loadJournalScope(ctx, rec, r.plan.Journal, scope)
	}
	snap := filepath.Join(r.plan.Outputs, "journal-snapshot.duckdb")
	clear := func() error {
		for _, p := range []string{snap, snap + ".wal", snap + ".lock"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	if err := clear(); err != nil { // left by a killed run
		return err
	}
	defer clear()
	if err := r.held.Snapshot(ctx, snap, scope.Open...); err != nil {
		return err
	}
	return rec.LoadJournalScope(ctx, snap, scope)
}

// copyLatest makes report.xlsx a copy of the run's dated report.
func (r *runner) copyLatest(dated string) error {
	latest := filepath.Join(r.plan.Outputs, "report.xlsx")
	return writers.WriteFileAtomic(latest, func(w io.Writer) error {
		f, err := os.Open(dated)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
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
	opts := reconcile.Options{Path: dbPath, MemoryLimit: r.plan.MemoryLimit, Rows: true} // a run always writes its report
	if r.plan.Tolerance != "" {
		var err error
		if opts.Tolerance, err = parseTolerance(r.plan.Tolerance); err != nil {
			return nil, paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("tolerance: %w", err))
		}
	}
	rec, err := reconcile.Open(ctx, opts)
	return rec, classifyIO(paybatch.ErrResumable, r.plan.Outputs, err)
}

// ReportName is the file name a run's report is kept under in the job's
// outputs (report.xlsx is a copy of the latest).
func ReportName(runID string) string { return "report-" + runID + ".xlsx" }

// outputs says where run id's report and the job's exports go.
func (r *runner) outputs(id string) Outputs {
	o := Outputs{XLSX: filepath.Join(r.plan.Outputs, ReportName(id)), EmailTo: r.plan.EmailTo, MaxAttachment: r.plan.MaxAttachment,
		XLSXMatchedRows: r.plan.XLSXMatchedRows}
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

// verdict is a run's ending once its report is out.
func (r *runner) verdict(c *carried, sum paybatch.Summary) error {
	if len(c.refused) > 0 && len(c.processed) == 0 {
		return paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("no input could be submitted: %s", strings.Join(c.refused, ", ")))
	}
	if n := Exceptions(sum); c.exceptions || n > 0 {
		return paybatch.WithKind(paybatch.ErrExceptions, fmt.Errorf("finished with %d reconciliation exception(s)%s: see %s", n, refusedNote(c.refused), r.out.Report))
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
// run did nothing because another held the journal. Success (and the last
// success time) means every run is done: its report written and e-mailed.
func (r *runner) writeMetrics(err error) {
	k := paybatch.KindOf(err)
	if r.plan.MetricsFile == "" || k == paybatch.ErrLocked {
		return
	}
	now := r.d.Now()
	r.m.Duration = now.Sub(r.start)
	r.m.Success = r.done
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
