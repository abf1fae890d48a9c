package pipeline

import (
	"context"
	"time"

	"github.com/paybatch/paybatch"
)

// JournalSending journals ins and marks them "sending", first sent at
// sentAt: the state a run killed mid-send leaves behind.
func JournalSending(ctx context.Context, j *Journal, p Provider, ins []paybatch.Instruction, sentAt time.Time) error {
	src := func(yield func(paybatch.Instruction, error) bool) {
		for _, in := range ins {
			if !yield(in, nil) {
				return
			}
		}
	}
	if _, _, err := ingest(ctx, j, p, src, sentAt); err != nil {
		return err
	}
	_, err := j.DB().ExecContext(ctx, `UPDATE journal SET state = 'sending', attempts = 1, sent_at = ?`, sentAt.UTC())
	return err
}
