package job

import (
	"context"
	"errors"
	"fmt"
	"iter"

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
}

// SubmitResult is what Submit found and did. Validation is set once the
// files were read; Sent once the engine ran (Result and Journal are then
// valid, even when the run was cut short).
type SubmitResult struct {
	Validation *readers.Report
	Limits     paybatch.Limits // the limits the send runs (or would run) under
	Sent       bool
	Result     pipeline.Result
	Journal    string
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

	rep, err := readers.Validate(ctx, req.Files, req.Read)
	if err != nil {
		return out, classifyIO(paybatch.ErrInput, req.Files[0], err)
	}
	out.Validation = rep
	if rep.Rejected > 0 && !req.AllowPartial {
		return out, paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("%d of %d rows rejected: nothing was submitted; fix them (paybatch validate writes the full list) or pass --allow-partial to submit the %d valid rows",
			rep.Rejected, rep.Rows, rep.Valid))
	}
	if req.DryRun {
		return out, nil
	}

	pacer := pipeline.NewPacer(out.Limits)
	cfg.Pacer = pacer
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
		dj, err := openJournal(ctx, out.Journal, nil)
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

	stop := d.progress(&cfg, rep.Valid)
	var res pipeline.Result
	runErr := underLease(ctx, j, prov, req.Credentials, func(ctx context.Context) (err error) {
		res, err = pipeline.Submit(ctx, j, client, validRows(ctx, req.Files, req.Read, rep), cfg)
		return err
	})
	stop()
	out.Sent, out.Result = true, res
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

// validRows streams the files again, skipping the rows validation refused.
func validRows(ctx context.Context, paths []string, opts readers.Options, rep *readers.Report) iter.Seq2[paybatch.Instruction, error] {
	return func(yield func(paybatch.Instruction, error) bool) {
		for _, p := range paths {
			if !validRowsOf(ctx, p, opts, rep, yield) {
				return
			}
		}
	}
}

// validRowsOf yields the valid rows of one file; false means stop.
func validRowsOf(ctx context.Context, path string, opts readers.Options, rep *readers.Report, yield func(paybatch.Instruction, error) bool) bool {
	b, err := readers.Open(path, opts)
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
