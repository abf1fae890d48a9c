package pipeline

import (
	"context"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// JournalSending journals ins and marks them "sending", first sent at
// sentAt: the state a run killed mid-send leaves behind.
func JournalSending(ctx context.Context, j journal.Journal, p Provider, ins []paybatch.Instruction, sentAt time.Time) error {
	src := func(yield func(paybatch.Instruction, error) bool) {
		for _, in := range ins {
			if !yield(in, nil) {
				return
			}
		}
	}
	var provider paybatch.Provider
	if _, err := j.Ingest(ctx, rowsOf(ctx, p, src, sentAt, &provider), sentAt); err != nil {
		return err
	}
	return markSending(ctx, j, sentAt)
}

// markSending marks the run's rows "sending" once, first sent at sentAt.
func markSending(ctx context.Context, j journal.Journal, sentAt time.Time) error {
	for page, err := range j.Pages(ctx, journal.Filter{}) {
		if err != nil {
			return err
		}
		for _, r := range page {
			r.State, r.Attempts, r.SentAt = paybatch.StateSending, 1, sentAt
			if err := j.Save(r); err != nil {
				return err
			}
		}
	}
	return j.Flush(ctx)
}
