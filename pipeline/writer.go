package pipeline

import (
	"context"
	"errors"
	"fmt"
)

// The journal's state changes go through one writer goroutine that commits
// them in groups: every caller blocks until the transaction holding its
// change has committed, so "state written before the request leaves" holds,
// while one commit (one WAL sync) serves every worker that arrived in the
// meantime. This is what lets the journal keep up with thousands of rows a
// second.

const updateSQL = `UPDATE journal SET state = ?, outcome = ?, provider_status = ?, provider_id = ?, order_id = ?,
	reason_code = ?, problem = ?, http_status = ?, attempts = ?, updated_at = ?, sent_at = ?,
	provider_amount_minor = ?, provider_date = ?, replayed = ?, polls = ?, polled_at = ?, final_at = ?
	WHERE key = ?`

// maxGroup bounds one commit group.
const maxGroup = 1024

var errWriterClosed = errors.New("journal writer closed")

type write struct {
	args []any
	done chan error
}

type writer struct {
	j    *Journal
	in   chan write
	quit chan struct{}
	exit chan struct{}
}

func updateArgs(r *Row) []any {
	return []any{string(r.State), string(r.Outcome), r.ProviderStatus, r.ProviderID, r.OrderID,
		r.ReasonCode, r.Problem, int32(r.HTTPStatus), int32(r.Attempts), r.UpdatedAt.UTC(), nullTime(r.SentAt),
		nullInt(r.ProviderAmount), nullDate(r.ProviderDate), r.Replayed, int32(r.Polls), nullTime(r.PolledAt), nullTime(r.FinalAt),
		r.Key}
}

// save durably records r's mutable fields. It returns once committed.
func (j *Journal) save(r *Row) error {
	w := j.startWriter()
	wr := write{args: updateArgs(r), done: make(chan error, 1)}
	select {
	case w.in <- wr:
	case <-w.exit:
		return errWriterClosed
	}
	select {
	case err := <-wr.done:
		return err
	case <-w.exit:
		// The writer may have committed our change just before exiting.
		select {
		case err := <-wr.done:
			return err
		default:
			return errWriterClosed
		}
	}
}

func (j *Journal) startWriter() *writer {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.writer == nil {
		j.writer = &writer{j: j, in: make(chan write), quit: make(chan struct{}), exit: make(chan struct{})}
		go j.writer.run()
	}
	return j.writer
}

func (j *Journal) stopWriter() {
	j.wmu.Lock()
	w := j.writer
	j.writer = nil
	j.wmu.Unlock()
	if w != nil {
		close(w.quit)
		<-w.exit
	}
}

func (w *writer) run() {
	defer close(w.exit)
	group := make([]write, 0, maxGroup)
	for {
		group = group[:0]
		select {
		case <-w.quit:
			return
		case wr := <-w.in:
			group = append(group, wr)
		}
	drain:
		for len(group) < maxGroup {
			select {
			case wr := <-w.in:
				group = append(group, wr)
			default:
				break drain
			}
		}
		err := w.commit(group)
		for _, wr := range group {
			wr.done <- err
		}
	}
}

func (w *writer) commit(group []write) error {
	// Not tied to any run's context: a change that was handed over is
	// committed even while the run is being cancelled.
	ctx := context.Background()
	tx, err := w.j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: begin: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, updateSQL)
	if err != nil {
		tx.Rollback()
		return fmt.Errorf("journal: prepare: %w", err)
	}
	for _, wr := range group {
		res, err := stmt.ExecContext(ctx, wr.args...)
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("journal: update %v: %w", wr.args[len(wr.args)-1], err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			tx.Rollback()
			return fmt.Errorf("journal: update %v: %d rows affected, want 1", wr.args[len(wr.args)-1], n)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: commit: %w", err)
	}
	return nil
}
