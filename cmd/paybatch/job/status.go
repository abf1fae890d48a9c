package job

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
)

// StatusRequest is one `paybatch status`.
type StatusRequest struct {
	Journal string
	// Poll polls accepted rows until Engine.PollDeadline; false only reads.
	Poll   bool
	Engine Engine
	// Credentials per provider, needed only for the providers that have
	// accepted rows to poll.
	Credentials map[paybatch.Provider]Credentials
}

// StatusReport is a journal's state after any polling.
type StatusReport struct {
	Journal   string
	Counts    []journal.StateCount
	Attention []*journal.Row   // rows that are not final-and-fine
	Rejects   []journal.Reject // rows refused by validation, never sent
	// Dates: Direct Debit rows by requested date and the date used (the
	// provider's, or the one Bacs will use for rows still to send).
	Dates []DatePlan
	// Running is the progress of the run that holds the journal, when one
	// does (then only Journal is set besides it: the journal cannot be
	// read while another process has it).
	Running *journal.Progress
}

// Status polls the journal's accepted rows (when asked) and summarises it.
// The error's kind: nil when nothing needs attention, ErrExceptions for
// declines, rejects, conflicts or failed outcomes, ErrResumable for rows
// unfinished (or polling cut short). The report is valid whenever it is
// not nil. While another run holds the journal, the report carries that
// run's published progress (Running) and the error is nil; without one it
// is ErrLocked.
func Status(ctx context.Context, d Deps, req StatusRequest) (*StatusReport, error) {
	d.defaults()
	if postgres.IsURL(req.Journal) {
		// A shared journal: read while runs write.
	} else if _, err := os.Stat(req.Journal); err != nil {
		k := paybatch.ErrInput
		if !errors.Is(err, fs.ErrNotExist) {
			k = paybatch.KindOf(classifyIO(k, req.Journal, err))
		}
		return nil, paybatch.WithKind(k, fmt.Errorf("journal: %w", err))
	}
	j, err := openJournal(ctx, req.Journal, nil)
	if errors.Is(err, paybatch.ErrLocked) {
		if p, ok, perr := journal.ReadProgress(req.Journal); perr == nil && ok {
			return &StatusReport{Journal: req.Journal, Running: &p}, nil
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	defer j.Close()

	var pollErr error
	if req.Poll {
		pollErr = pollJournal(ctx, d, j, req)
		if k := paybatch.KindOf(pollErr); k == paybatch.ErrConfig || k == paybatch.ErrUsage {
			return nil, pollErr
		}
	}
	rep := &StatusReport{Journal: req.Journal}
	if rep.Counts, err = j.Counts(ctx); err != nil {
		return nil, journalFailed(req.Journal, err)
	}
	if rep.Attention, err = j.Rows(ctx, journal.Query{Attention: true}); err != nil {
		return nil, journalFailed(req.Journal, err)
	}
	if rep.Rejects, err = j.Rejects(ctx); err != nil {
		return nil, journalFailed(req.Journal, err)
	}
	if rep.Dates, err = journalDates(ctx, j, d.Now()); err != nil {
		return nil, journalFailed(req.Journal, err)
	}
	if pollErr != nil {
		return rep, pollErr
	}
	return rep, statusVerdict(rep.Counts, len(rep.Rejects))
}

// pollJournal polls the accepted rows of each provider in the journal.
func pollJournal(ctx context.Context, d Deps, j journal.Journal, req StatusRequest) error {
	counts, err := j.Counts(ctx)
	if err != nil {
		return journalFailed(j.Name(), err)
	}
	need := map[paybatch.Provider]bool{}
	for _, c := range counts {
		if c.State == paybatch.StateAccepted {
			need[c.Provider] = true
		}
	}
	for _, p := range []paybatch.Provider{paybatch.SmartRetry, paybatch.SmarterPay} {
		if !need[p] {
			continue
		}
		cfg := req.Engine.config(&d, p)
		pacer := newPacer(&d, &cfg)
		client, err := NewClient(p, req.Credentials[p], pacer)
		if err != nil {
			return err
		}
		stop := d.progress(&cfg, 0)
		err = underLease(ctx, j, p, req.Credentials[p], func(ctx context.Context) error {
			_, err := pipeline.Poll(ctx, j, client, cfg)
			return err
		})
		stop()
		if err != nil {
			return sendFailed(j.Name(), req.Credentials[p], p, fmt.Errorf("polling %s: %w", p, err), "run status again to resume")
		}
	}
	return nil
}

func statusVerdict(counts []journal.StateCount, rejects int) error {
	unfinished, exceptions := 0, rejects
	for _, c := range counts {
		switch {
		case c.State == paybatch.StatePending || c.State == paybatch.StateSending || c.State == paybatch.StateFailed:
			unfinished += c.Rows
		case c.State == paybatch.StateDeclined || c.State == paybatch.StateRejected || c.State == paybatch.StateConflict ||
			c.Outcome == paybatch.OutcomeFailed || c.Outcome == paybatch.OutcomeCancelled:
			exceptions += c.Rows
		}
	}
	switch {
	case unfinished > 0:
		return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("%d rows unfinished: run submit again with the same files to resume", unfinished))
	case exceptions > 0:
		return paybatch.WithKind(paybatch.ErrExceptions, fmt.Errorf("%d rows need attention (listed above)", exceptions))
	}
	return nil
}
