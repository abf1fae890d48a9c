package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/duckdb/duckdb-go/v2"
)

// State changes go through one writer goroutine that appends them to
// journal_events in groups: every caller blocks until the group holding its
// change has been committed, so "state written before the request leaves"
// holds, while one commit serves every worker that arrived meanwhile. An
// append costs microseconds where an UPDATE by key costs a millisecond or
// more in DuckDB; Flush folds the events into journal with one bulk UPDATE.

// maxGroup bounds one commit group; queueLen bounds writes waiting for one.
const (
	maxGroup = 1024
	queueLen = 4096
)

type write struct {
	row  []driver.Value
	done chan error
}

type writer struct {
	j    *DuckDB
	in   chan write
	quit chan struct{}
	exit chan struct{}

	conn *sql.Conn
	app  *duckdb.Appender
	seq  int64

	errMu sync.Mutex
	err   error // first commit error (sticky)
}

func (w *writer) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// SaveLater queues r's mutable fields for the next group commit without
// waiting for it. It is for what a request *returned*: losing it in a crash
// leaves the row "sending", and the resend with the same key gets the same
// answer replayed. Writes from one goroutine are committed in order; an
// error surfaces on the next save or Flush.
func (j *DuckDB) SaveLater(r *Row) error {
	w, err := j.startWriter()
	if err != nil {
		return err
	}
	if err := w.failed(); err != nil {
		return err
	}
	select {
	case w.in <- write{row: eventArgs(0, r)}:
		return nil
	case <-w.exit:
		return ErrWriterClosed
	}
}

// Save durably records r's mutable fields. It returns once committed.
func (j *DuckDB) Save(r *Row) error {
	w, err := j.startWriter()
	if err != nil {
		return err
	}
	wr := write{row: eventArgs(0, r), done: make(chan error, 1)}
	select {
	case w.in <- wr:
	case <-w.exit:
		return ErrWriterClosed
	}
	select {
	case err := <-wr.done:
		return err
	case <-w.exit:
		select {
		case err := <-wr.done:
			return err
		default:
			return ErrWriterClosed
		}
	}
}

func (j *DuckDB) startWriter() (*writer, error) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.writer != nil {
		return j.writer, nil
	}
	ctx := context.Background()
	conn, err := j.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	w := &writer{j: j, in: make(chan write, queueLen), quit: make(chan struct{}), exit: make(chan struct{}), conn: conn}
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM journal_events`).Scan(&w.seq); err != nil {
		conn.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	err = conn.Raw(func(dc any) error {
		var err error
		w.app, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "journal_events")
		return err
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("journal: appender: %w", err)
	}
	j.writer = w
	go w.run()
	return w, nil
}

func (j *DuckDB) stopWriter() error {
	j.wmu.Lock()
	w := j.writer
	j.writer = nil
	j.wmu.Unlock()
	if w == nil {
		return nil
	}
	close(w.quit)
	<-w.exit
	err := w.failed()
	if cerr := w.app.Close(); err == nil {
		err = cerr
	}
	if cerr := w.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// Flush stops the writer and folds every recorded state change into the
// journal table (one bulk UPDATE). Submit and Poll call it before they
// return; OpenDuckDB calls it for events a killed run left behind.
func (j *DuckDB) Flush(ctx context.Context) error {
	if err := j.stopWriter(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.fold(ctx); err != nil {
		return err
	}
	j.pmu.Lock()
	j.counts = nil // the next Publish recounts
	j.pmu.Unlock()
	return nil
}

func (j *DuckDB) fold(ctx context.Context) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `UPDATE journal SET state = e.state, outcome = e.outcome, provider_status = e.provider_status,
		provider_id = e.provider_id, order_id = e.order_id, reason_code = e.reason_code, problem = e.problem,
		http_status = e.http_status, attempts = e.attempts, updated_at = e.updated_at, sent_at = e.sent_at,
		provider_amount_minor = e.provider_amount_minor, provider_date = e.provider_date, replayed = e.replayed,
		polls = e.polls, polled_at = e.polled_at, final_at = e.final_at, poll_refused_at = e.poll_refused_at
		FROM (SELECT * FROM journal_events QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1) e
		WHERE journal.key = e.key`)
	if err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM journal_events`); err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	return nil
}

func (w *writer) run() {
	defer close(w.exit)
	group := make([]write, 0, maxGroup)
	for {
		group = group[:0]
		select {
		case <-w.quit:
			// Commit what is still queued (queued writes were handed over
			// before the run stopped), then exit.
			for {
				select {
				case wr := <-w.in:
					group = append(group, wr)
					if len(group) < maxGroup {
						continue
					}
				default:
				}
				if len(group) == 0 {
					return
				}
				w.finish(group, w.commit(group))
				group = group[:0]
			}
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
		w.finish(group, w.commit(group))
	}
}

func (w *writer) finish(group []write, err error) {
	if err != nil {
		w.errMu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.errMu.Unlock()
	}
	for _, wr := range group {
		if wr.done != nil {
			wr.done <- err
		}
	}
}

func (w *writer) commit(group []write) error {
	for _, wr := range group {
		w.seq++
		wr.row[0] = w.seq
		if err := w.app.AppendRow(wr.row...); err != nil {
			return fmt.Errorf("journal: append event %v: %w", wr.row[1], err)
		}
	}
	// Flush commits the group: after it returns the changes are durable.
	if err := w.app.Flush(); err != nil {
		return fmt.Errorf("journal: commit: %w", err)
	}
	return nil
}
