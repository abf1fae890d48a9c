package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// State changes go through a GroupWriter that appends them to
// journal_events in groups (duckCommitter): an append costs microseconds
// where an UPDATE by key costs a millisecond or more in DuckDB; Flush folds
// the events into journal with one bulk UPDATE. A paced writer makes its
// groups durable in a log beside the journal instead, and they enter
// journal_events in bulk (duckdb_changelog.go).

// duckCommitter appends a group to journal_events through an Appender on
// its own connection; the Appender's Flush is the commit. With a log (a
// paced writer) a group is committed by appending it to the log, and the
// Appender takes the logged changes in bulk (materialise).
type duckCommitter struct {
	conn *sql.Conn
	app  *duckdb.Appender
	seq  int64
	j    *DuckDB // its kept latest states are told of each commit

	log *changeLog // nil: each group is committed to DuckDB
	// mu serialises the log and the Appender between the writer's
	// commits and materialise (a reader that needs the latest states).
	mu     sync.Mutex
	frames []byte // the logged changes not yet in journal_events
	logged int    // and their number
}

func (c *duckCommitter) Commit(group []Change) (func(*Row) error, error) {
	if c.log != nil {
		if err := c.logGroup(group); err != nil {
			return nil, err
		}
		c.j.committed(group)
		return nil, nil
	}
	for _, ch := range group {
		c.seq++
		if err := c.app.AppendRow(eventArgs(c.seq, ch.Row)...); err != nil {
			return nil, fmt.Errorf("journal: append event %v: %w", ch.Row.Key, err)
		}
	}
	// Flush commits the group: after it returns the changes are durable.
	if err := c.app.Flush(); err != nil {
		return nil, fmt.Errorf("journal: commit: %w", err)
	}
	c.j.committed(group)
	return nil, nil
}

// logGroup commits group to the log: durable when it returns.
func (c *duckCommitter) logGroup(group []Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	from := len(c.frames)
	for _, ch := range group {
		c.seq++
		c.frames = appendChange(c.frames, c.seq, ch.Row)
	}
	if err := c.log.write(c.frames[from:]); err != nil {
		// The writer's error sticks: no later group takes these seqs, and
		// the log, whatever it holds of them, is replayed on the next open.
		return err
	}
	c.logged += len(group)
	if c.logged >= maxLoggedChanges {
		return c.materialiseLocked()
	}
	return nil
}

// materialise commits the logged changes to journal_events and empties
// the log.
func (c *duckCommitter) materialise() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.materialiseLocked()
}

func (c *duckCommitter) materialiseLocked() error {
	if c.logged == 0 {
		return nil
	}
	n, err := appendLogged(c.app, c.frames, 0)
	if err == nil && n != len(c.frames) {
		err = fmt.Errorf("change %d of %d does not read back", n, len(c.frames))
	}
	if err == nil {
		err = c.app.Flush()
	}
	if err != nil {
		return fmt.Errorf("journal: commit logged changes: %w", err)
	}
	c.frames, c.logged = c.frames[:0], 0
	return c.log.empty()
}

// materialise brings the changes a paced writer has logged into
// journal_events, for a read that needs every row's latest state (the
// rows and counts by state, the kept states, a snapshot).
func (j *DuckDB) materialise() error {
	j.paceMu.Lock()
	defer j.paceMu.Unlock()
	if j.paced == nil {
		return nil
	}
	return j.paced.materialise()
}

// eventAppender opens an Appender on journal_events on conn, and reads
// the largest seq it holds (0: none).
func eventAppender(ctx context.Context, conn *sql.Conn) (*duckdb.Appender, int64, error) {
	var last int64
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM journal_events`).Scan(&last); err != nil {
		return nil, 0, fmt.Errorf("journal: %w", err)
	}
	var app *duckdb.Appender
	err := conn.Raw(func(dc any) error {
		var err error
		app, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "journal_events")
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("journal: appender: %w", err)
	}
	return app, last, nil
}

// appendLogged appends to app the changes of the log frames b with a seq
// above after (those up to it are in journal_events already: committed
// before a crash), each key's latest only — a fold applies only that one,
// so a row's intent and its answer are one event, not two, and a change
// superseded in b is never replayed either. It returns the bytes read (a
// torn tail's start).
func appendLogged(app *duckdb.Appender, b []byte, after int64) (int, error) {
	latest := map[string]int64{}
	n, err := readChanges(b, func(lc loggedChange) error {
		if lc.seq > max(after, latest[lc.row.Key]) {
			latest[lc.row.Key] = lc.seq
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	_, err = readChanges(b[:n], func(lc loggedChange) error {
		if latest[lc.row.Key] != lc.seq {
			return nil
		}
		return app.AppendRow(eventArgs(lc.seq, &lc.row)...)
	})
	return n, err
}

// replayChangeLog brings a log a killed run left into journal_events: the
// changes with a seq above journal_events' largest (appendLogged); then
// removes the log.
// OpenDuckDB calls it before its fold.
func (j *DuckDB) replayChangeLog(ctx context.Context) error {
	path := changeLogPath(j.path)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	conn, err := j.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	defer conn.Close()
	app, last, err := eventAppender(ctx, conn)
	if err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	_, err = appendLogged(app, b, last)
	if cerr := app.Close(); err == nil { // Close flushes: the commit
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: change log %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	return syncDir(path)
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
	return w.SaveLater(r)
}

// Save durably records r's mutable fields. It returns once committed.
func (j *DuckDB) Save(r *Row) error {
	w, err := j.startWriter()
	if err != nil {
		return err
	}
	return w.Save(r)
}

// SetLinger lets the first state change of a commit group wait up to d for
// others (see GroupWriter.SetLinger); 0 commits at once.
func (j *DuckDB) SetLinger(d time.Duration) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.linger = d
	if j.writer != nil {
		j.writer.SetLinger(d)
		// A setting is not worth failing a run for: the next start or stop
		// of the writer sets the count again.
		_ = j.paceThreads(context.Background(), d > 0)
	}
}

func (j *DuckDB) startWriter() (*GroupWriter, error) {
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
	c := &duckCommitter{conn: conn, j: j}
	if c.app, c.seq, err = eventAppender(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	if err := j.paceThreads(ctx, j.linger > 0); err != nil {
		c.app.Close()
		conn.Close()
		return nil, err
	}
	if j.linger >= j.logLinger {
		if c.log, err = createChangeLog(j.path); err != nil {
			c.app.Close()
			conn.Close()
			return nil, err
		}
		j.paceMu.Lock()
		j.paced = c
		j.paceMu.Unlock()
	}
	j.writer, j.committer = NewGroupWriter(c, j.linger), c
	return j.writer, nil
}

func (j *DuckDB) stopWriter() error {
	j.wmu.Lock()
	w, c := j.writer, j.committer
	j.writer, j.committer = nil, nil
	j.wmu.Unlock()
	if w == nil {
		return nil
	}
	err := w.Close()
	if c.log != nil {
		// The logged changes enter journal_events, then the log goes. On
		// an error it stays, for the next open to replay (fold refuses to
		// run while it is there).
		j.paceMu.Lock()
		if merr := c.materialise(); err == nil {
			err = merr
		}
		if err == nil {
			err = c.log.remove()
		} else {
			c.log.f.Close()
		}
		j.paced = nil
		j.paceMu.Unlock()
	}
	if cerr := c.app.Close(); err == nil {
		err = cerr
	}
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	// Folds and checkpoints run with the writer stopped, on the threads the
	// journal's size calls for.
	if terr := j.paceThreads(context.Background(), false); err == nil {
		err = terr
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
	// With the writer stopped, a large WAL is folded into the file before
	// the fold (see largeWAL).
	if err := j.checkpoint(ctx, largeWAL); err != nil {
		return err
	}
	if err := j.fold(ctx); err != nil {
		return err
	}
	j.pmu.Lock()
	j.counts = nil // the next Publish recounts
	j.pmu.Unlock()
	return nil
}

// CheckpointDue says whether the run's writes should pause for a
// Checkpoint: the WAL has reached the journal's run threshold
// (Options.CheckpointWAL). Until a checkpoint DuckDB keeps the changes the
// WAL holds in memory (the state changes appended to journal_events, the
// fold's updates), and a large run failed mid-send at its memory_limit
// (#19). It costs a stat.
func (j *DuckDB) CheckpointDue() bool { return walSize(j.path) >= j.runWAL }

// Checkpoint stops the writer (committing what is queued), folds the WAL
// into the file under the protected copy (duckdb_checkpoint.go), so that
// DuckDB lets go of the memory it held, then folds the recorded state
// changes into the journal table (their updates go to the next checkpoint). The caller has stopped its writes
// (Save, SaveLater) meanwhile — the engine waits for a page's workers —
// and the next write starts the writer again. Reads may run meanwhile (the
// page reader fetching the next page). A crash at any point in it
// loses nothing: the fold is one transaction, and a checkpoint cut short is
// undone by the next open.
func (j *DuckDB) Checkpoint(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	if err := j.stopWriter(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if walSize(j.path) >= j.runWAL {
		if err := j.checkpointNow(ctx); err != nil {
			return err
		}
		// The WAL is empty: DuckDB gives back what it held only when the
		// database is closed (duckdb_reopen.go).
		if err := j.reopen(ctx); err != nil {
			return err
		}
	}
	if err := j.fold(ctx); err != nil {
		return err
	}
	j.pmu.Lock()
	j.counts = nil
	j.pmu.Unlock()
	return nil
}

// fold applies the recorded state changes to the journal table, in one
// transaction, and empties journal_events. The changes are applied
// foldEvents at a time in the order they were recorded (a later piece
// overwrites what an earlier one set, as one pass taking each key's latest
// change would): the join builds its hash table from the changes, with
// every mutable column, ≈ 450 bytes a change — 200k changes (64 MB of
// WAL in a poll phase) took 90 MB of a 128 MB memory_limit, and a 1M-row
// poll failed there ("fold: Out of Memory Error", #19). A piece costs a
// scan of the journal's keys.
func (j *DuckDB) fold(ctx context.Context) error {
	// The changes a log holds are newer than every event: a fold before
	// they are in journal_events would let the log's replay come after
	// (and its seqs begin again).
	if _, err := os.Stat(changeLogPath(j.path)); err == nil {
		return fmt.Errorf("journal: fold: the change log %s has not been committed (it is replayed when the journal next opens)", changeLogPath(j.path))
	}
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	defer tx.Rollback()
	var lo, hi sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(seq), max(seq) FROM journal_events`).Scan(&lo, &hi); err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	if !lo.Valid {
		return nil // nothing recorded: nothing to apply or empty (the deferred Rollback ends the read)
	}
	for from := lo.Int64; from <= hi.Int64; from += j.foldEvents {
		_, err = tx.ExecContext(ctx, `UPDATE journal SET state = e.state, outcome = e.outcome, provider_status = e.provider_status,
			provider_id = e.provider_id, order_id = e.order_id, reason_code = e.reason_code, problem = e.problem,
			http_status = e.http_status, attempts = e.attempts, updated_at = e.updated_at, sent_at = e.sent_at,
			provider_amount_minor = e.provider_amount_minor, provider_date = e.provider_date, replayed = e.replayed,
			polls = e.polls, polled_at = e.polled_at, final_at = e.final_at, poll_refused_at = e.poll_refused_at
			FROM (SELECT * FROM journal_events WHERE seq BETWEEN ? AND ?
				QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1) e
			WHERE journal.key = e.key`, from, from+j.foldEvents-1)
		if err != nil {
			return fmt.Errorf("journal: fold: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM journal_events`); err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: fold: %w", err)
	}
	return nil
}

// foldEvents is how many recorded changes (by seq) a fold applies at once.
const foldEvents = 32_768
