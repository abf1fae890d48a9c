package job

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/readers"
)

// SubmitRequest is one `paybatch submit`: files of one kind sent exactly
// once through one journal.
type SubmitRequest struct {
	Files        []string
	Read         readers.Options // Kind is required; Rules default to the provider's (pipeline.RulesFor) on Deps.Now
	Journal      string          // "" → <first file>.journal.duckdb
	AllowPartial bool            // send the valid rows when some are rejected
	DryRun       bool            // validate and stop; nothing is opened or sent
	Engine       Engine
	Credentials  Credentials
	// Redrive sends again the rows of these files that the provider
	// refused (state rejected) with one of these reason codes, or with any
	// re-drivable one when it holds RedriveAll — after the user fixed the
	// cause outside the row. Same idempotency key (see Redrive).
	Redrive []string
}

// RedriveAll in SubmitRequest.Redrive re-drives every re-drivable refusal.
const RedriveAll = "*"

// SubmitResult is what Submit found and did. Validation is set once the
// files were read; Sent once the engine ran (Result and Journal are then
// valid, even when the run was cut short).
type SubmitResult struct {
	Validation *readers.Report
	Limits     paybatch.Limits // the limits the send runs (or would run) under
	Sent       bool
	Result     pipeline.Result
	Journal    string
	Redriven   int        // refused rows set to be sent again (Redrive)
	Dates      []DatePlan // dry run (SmarterPay): the dates Bacs will use
}

// Submit validates the files, journals every valid row before anything is
// sent, sends each row once and polls for final statuses (unless
// Engine.NoPoll). It returns a nil error only when every row was accepted;
// otherwise the error's kind says what happened: ErrInput (nothing sent),
// ErrConfig, ErrLocked, ErrExceptions (finished; declines, rejects or
// conflicts), ErrResumable (stopped part-way: run again).
func Submit(ctx context.Context, d Deps, req SubmitRequest) (*SubmitResult, error) {
	return submit(ctx, d, req, nil)
}

// SubmitJournal is Submit on a journal the caller already holds open for
// its whole life (paybatch serve, see HoldJournal); req.Journal is ignored.
func SubmitJournal(ctx context.Context, d Deps, j journal.Journal, req SubmitRequest) (*SubmitResult, error) {
	return submit(ctx, d, req, j)
}

func submit(ctx context.Context, d Deps, req SubmitRequest, held journal.Journal) (*SubmitResult, error) {
	d.defaults()
	if req.Read.Rules == nil {
		req.Read.Rules = pipeline.RulesFor(req.Read.Kind.Provider(), d.Now)
	}
	if len(req.Files) == 0 {
		return &SubmitResult{}, paybatch.WithKind(paybatch.ErrUsage, errors.New("no files to submit"))
	}
	prov := req.Read.Kind.Provider()
	cfg := req.Engine.config(&d, prov)
	out := &SubmitResult{Limits: cfg.Limits()}

	// each file is opened once: validated, hashed and sent through one handle
	ins := make([]readers.Input, 0, len(req.Files))
	defer func() {
		for _, in := range ins {
			in.Close()
		}
	}()
	for _, p := range req.Files {
		in, err := readers.OpenInput(p, req.Read.MaxFileSize, d.Open)
		if err != nil {
			return out, classifyIO(paybatch.ErrInput, p, err)
		}
		ins = append(ins, in)
	}
	rep, err := readers.ValidateInputs(ctx, ins, req.Read)
	if err != nil {
		return out, classifyIO(paybatch.ErrInput, req.Files[0], err)
	}
	out.Validation = rep
	if rep.Rejected > 0 && !req.AllowPartial {
		return out, paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("%d of %d rows rejected: nothing was submitted; fix them (paybatch validate writes the full list) or pass --allow-partial to submit the %d valid rows",
			rep.Rejected, rep.Rows, rep.Valid))
	}
	if req.DryRun {
		if prov == paybatch.SmarterPay {
			if out.Dates, err = planDates(ctx, validRows(ctx, ins, req.Read, rep), d.Now()); err != nil {
				return out, classifyIO(paybatch.ErrInput, req.Files[0], err)
			}
		}
		return out, nil
	}

	pacer := newPacer(&d, &cfg)
	client, err := NewClient(prov, req.Credentials, pacer)
	if err != nil {
		return out, err
	}
	j := held
	if j == nil {
		out.Journal = req.Journal
		if out.Journal == "" {
			out.Journal = req.Files[0] + ".journal.duckdb"
		}
		dj, err := openJournalWith(ctx, out.Journal, journal.Options{Large: d.JournalLarge})
		if err != nil {
			return out, err
		}
		defer dj.Close()
		j = dj
	}
	out.Journal = j.Name()
	if rep.Rejected > 0 {
		if err := j.RecordRejects(ctx, rejectsOf(rep.Rejects)); err != nil {
			return out, journalFailed(j.Name(), err)
		}
	}

	var redriven []*journal.Row
	if len(req.Redrive) > 0 {
		if redriven, err = redrive(ctx, d, j, req.Files, req.Redrive); err != nil {
			return out, err
		}
		out.Redriven = len(redriven)
	}

	stop := d.progress(&cfg, rep.Valid)
	var res pipeline.Result
	runErr := underLease(ctx, j, prov, req.Credentials, func(ctx context.Context) (err error) {
		res, err = pipeline.Submit(ctx, j, client, validRows(ctx, ins, req.Read, rep), cfg)
		return err
	})
	stop()
	out.Sent, out.Result = true, res
	if runErr == nil && len(redriven) > 0 {
		sayRedriven(ctx, d, j, redriven)
	}
	if runErr != nil {
		return out, sendFailed(j.Name(), req.Credentials, prov, runErr, "run the same command again to resume")
	}
	if err := recordInputs(ctx, d, j, rep, req.Read.Kind); err != nil {
		return out, err
	}
	switch kind := verdict(res); {
	case kind == paybatch.ErrResumable:
		return out, paybatch.WithKind(kind, errors.New("some rows are not finished (failed after retries, or sent over 24 h ago and unresolved): run again to resume, or check the rows listed"))
	case kind == paybatch.ErrExceptions || rep.Rejected > 0:
		return out, paybatch.WithKind(paybatch.ErrExceptions, errors.New("finished with exceptions (declines, rejects or conflicts): see the summary"))
	}
	return out, nil
}

// verdict is the kind a finished engine result deserves: ErrResumable when
// rows are unfinished, ErrExceptions when rows need attention, else 0.
func verdict(res pipeline.Result) paybatch.ErrorKind { return paybatch.KindOf(res.Verdict()) }

// sendFailed explains why the engine stopped. Once sending has begun every
// failure is resumable: the journal is the truth and a re-run picks up where
// this one stopped; a configuration fault keeps its kind.
func sendFailed(journal string, c Credentials, p paybatch.Provider, err error, resume string) error {
	switch {
	case errors.Is(err, pipeline.ErrAuth):
		sv, _ := c.vars(p)
		return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("%w; check %s", err, sv))
	case errors.Is(err, pipeline.ErrEndpoint):
		_, uv := c.vars(p)
		return paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("%w; set %s to the %s API base URL (nothing reached the provider: the rows are not sent and a run with the right URL sends them)", err, uv, p))
	case diskFull(err):
		return errDiskFull(journal)
	case paybatch.KindOf(err) == paybatch.ErrConfig, paybatch.KindOf(err) == paybatch.ErrLocked:
		return err
	}
	return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("%w; the journal is consistent: %s", err, resume))
}

// journalFailed classifies a failed journal write outside the engine.
func journalFailed(journal string, err error) error {
	if diskFull(err) {
		return errDiskFull(journal)
	}
	return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("journal %s: %w", journal, err))
}

// recordInputs marks the validated files as processed in the journal.
func recordInputs(ctx context.Context, d Deps, j journal.Journal, rep *readers.Report, k paybatch.Kind) error {
	for _, f := range rep.Files {
		in := journal.Input{Path: f.Path, SHA256: f.SHA256, Rows: f.Rows, Kind: k, Provider: k.Provider()}
		if err := j.RecordInput(context.WithoutCancel(ctx), in, d.Now()); err != nil {
			return journalFailed(j.Name(), err)
		}
	}
	return nil
}

// validRows streams the files again through the handles they were
// validated through, skipping the rows validation refused.
func validRows(ctx context.Context, ins []readers.Input, opts readers.Options, rep *readers.Report) iter.Seq2[paybatch.Instruction, error] {
	return func(yield func(paybatch.Instruction, error) bool) {
		for _, in := range ins {
			if !validRowsOf(ctx, in, opts, rep, yield) {
				return
			}
		}
	}
}

// validRowsOf yields the valid rows of one file; false means stop.
func validRowsOf(ctx context.Context, in readers.Input, opts readers.Options, rep *readers.Report, yield func(paybatch.Instruction, error) bool) bool {
	b, err := readers.OpenReader(in.R, in.Size, in.Name, opts)
	if err != nil {
		yield(paybatch.Instruction{}, err)
		return false
	}
	defer b.Close()
	for in, err := range b.All(ctx) {
		var re *paybatch.RowError
		switch {
		case errors.As(err, &re) && rep.IsRejected(re.Source):
			continue
		case re != nil:
			yield(paybatch.Instruction{}, fmt.Errorf("%w (the file changed since it was validated?)", err))
			return false
		case err != nil:
			yield(paybatch.Instruction{}, err)
			return false
		case rep.IsRejected(in.Source):
			continue
		}
		if !yield(in, nil) {
			return false
		}
	}
	return true
}

func rejectsOf(errs []paybatch.RowError) []journal.Reject {
	out := make([]journal.Reject, 0, len(errs))
	for _, re := range errs {
		out = append(out, journal.Reject{Source: re.Source, Column: re.Column, Value: re.Value, Reason: re.Err.Error(), MerchantTxID: re.MerchantTxID})
	}
	return out
}

// neverRedrive are refusals a re-drive cannot cure: the key was used for
// another body (an edit after sending: a conflict, never a new send), or
// the key itself was refused.
var neverRedrive = map[string]string{
	"IDEMPOTENCY_CONFLICT":    "the key was already used with another body (the row was edited after it was sent)",
	"INVALID_IDEMPOTENCY_KEY": "the provider refused the key itself",
}

// redrive makes the refused rows of files with one of codes pending again,
// so the engine sends them once more — with the same idempotency key, so
// that a re-drive can never execute an operation twice. Rows the provider
// never answered, or refused for a reason a re-drive cannot cure, stay as
// they are.
func redrive(ctx context.Context, d Deps, j journal.Journal, files, codes []string) ([]*journal.Row, error) {
	want := map[string]bool{}
	for _, c := range codes {
		c = strings.ToUpper(strings.TrimSpace(c))
		if why, ok := neverRedrive[c]; ok {
			return nil, paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--redrive %s: rows refused with %s cannot be re-driven: %s", c, c, why))
		}
		want[c] = true
	}
	inFiles := map[string]bool{}
	for _, f := range files {
		inFiles[f] = true
		if abs, err := filepath.Abs(f); err == nil {
			inFiles[abs] = true
		}
	}
	rows, err := j.Rows(ctx, journal.Query{States: []paybatch.State{paybatch.StateRejected}})
	if err != nil {
		return nil, journalFailed(j.Name(), err)
	}
	var out []*journal.Row
	for _, r := range rows {
		switch {
		case !inFiles[r.Source.File]:
		case r.HTTPStatus < 400 || r.HTTPStatus > 499: // never answered by the provider (e.g. not expressible)
		case neverRedrive[r.ReasonCode] != "":
		case !want[RedriveAll] && !want[r.ReasonCode]:
		default:
			d.Log.Info("re-driving a refused row", "key", r.Key, "merchant_transaction_id", r.MerchantTxID, "reason_code", r.ReasonCode)
			prev := *r
			r.State, r.Outcome, r.ReasonCode, r.Problem, r.HTTPStatus = paybatch.StatePending, "", "", "", 0
			r.SentAt = time.Time{} // the replay window of a resend runs from the re-drive
			r.UpdatedAt = d.Now()
			if err := j.Save(r); err != nil {
				return nil, journalFailed(j.Name(), err)
			}
			out = append(out, &prev)
		}
	}
	if err := j.Flush(ctx); err != nil { // the engine reads the rows as of the last flush
		return nil, journalFailed(j.Name(), err)
	}
	d.say("re-driving %d refused row(s) under their own idempotency keys", len(out))
	return out, nil
}

// sayRedriven tells what became of re-driven rows; a row refused again for
// the same reason was most likely answered from the provider's idempotency
// store, which keeps the answer to a key for 24 h.
func sayRedriven(ctx context.Context, d Deps, j journal.Journal, rows []*journal.Row) {
	again, until := 0, time.Time{}
	for _, prev := range rows {
		now, err := j.Rows(ctx, journal.Query{MerchantTxID: prev.MerchantTxID})
		if err != nil {
			return
		}
		for _, r := range now {
			if r.Key == prev.Key && r.State == paybatch.StateRejected && r.ReasonCode == prev.ReasonCode {
				again++
				if t := prev.SentAt.Add(24 * time.Hour); t.After(until) {
					until = t
				}
			}
		}
	}
	d.say("re-driven: %d sent again, %d refused again", len(rows), again)
	if again > 0 {
		d.say("the provider keeps its answer to an idempotency key for 24 h and replays it: if the cause was fixed on the provider's side, re-drive after %s; a fix of the endpoint or credential (another account) takes effect at once",
			until.UTC().Format("2006-01-02 15:04 MST"))
	}
}
