package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Reopening the database during a run (#19). DuckDB keeps memory it only
// gives back when the database is closed: its ALLOCATOR tag grew from ≈ 1 to
// 37–51 MB through the poll phase of a 1M-row submit whatever the
// checkpoints, and its allocator kept 30–70 MB more that it does not count
// against memory_limit (BENCHMARKS.md, "Memory at 1,000,000 rows"). So after
// each of a run's checkpoints — the WAL is then empty, and opening the file
// replays nothing — the journal closes its DuckDB database and opens it
// again, which gives all of it back.
//
// The *sql.DB stays the same (users of SQL(), such as the web server's
// store, keep theirs): it is opened on a reopener, a driver.Connector whose
// DuckDB connector is swapped. A reopen pauses the opening of new
// connections, lets the pool close every connection as it is returned
// (SetMaxIdleConns(0)), and once none is open any more closes the database
// and opens it again; the connections asked for meanwhile are then made on
// the new one. When a connection stays in use past reopenDrain (a
// transaction held open elsewhere), the reopen is given up for this time:
// nothing changes.
//
// The journal's lock (JOURNAL.lock, the lock runs and servers take) is held
// throughout: no other run or server can take the journal in between. DuckDB's
// own lock on the file is released for the few milliseconds the file is
// closed, but paybatch's readers in other processes (reconcile and `journal
// export`, which ATTACH the file read-only) ask the journal's lock first:
// Upgrade, which they call before they ATTACH, reads the file under it,
// shared (readLock), and is refused (ErrLocked) while any holder has the
// journal, reopening or not. Only a reader that asks no journal lock (the
// duckdb CLI opening the file read-only), or a paybatch reader whose Upgrade
// ended before this holder took the journal and whose ATTACH, microseconds
// later, lands in a reopen (a run's first comes after its first checkpoint,
// seconds after it took the lock), can open the file then. It sees the
// journal as the checkpoint left it (the WAL is empty; nothing is lost or
// half-written), and the reopen waits for it to let go, up to reopenWait;
// beyond that the journal stays closed and the run ends, resumable.

// reopener is the journal's driver.Connector (see the top of this file).
type reopener struct {
	dsn string

	mu      sync.Mutex
	cond    *sync.Cond
	c       *duckdb.Connector // nil when the database could not be opened again
	err     error             // why c is nil
	paused  bool
	waiting int // Connect calls waiting for a reopen to end

	drain       time.Duration // reopenDrain; tests lower it
	whileClosed func()        // tests: runs while the database is closed
}

func newReopener(dsn string) (*reopener, error) {
	c, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		return nil, err
	}
	r := &reopener{dsn: dsn, c: c, drain: reopenDrain}
	r.cond = sync.NewCond(&r.mu)
	return r, nil
}

// Connect makes a connection to the database as it is now (after any
// reopen in progress).
func (r *reopener) Connect(ctx context.Context) (driver.Conn, error) {
	r.mu.Lock()
	for r.paused {
		r.waiting++
		r.cond.Wait()
		r.waiting--
	}
	c, err := r.c, r.err
	r.mu.Unlock()
	if c == nil {
		return nil, err
	}
	return c.Connect(ctx)
}

func (r *reopener) Driver() driver.Driver { return duckdb.Driver{} }

// Close closes the database (sql.DB.Close calls it).
func (r *reopener) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c == nil {
		return nil
	}
	err := r.c.Close()
	r.c, r.err = nil, errors.New("journal: closed")
	return err
}

const (
	// reopenDrain bounds how long a reopen waits for the connections in use
	// to be returned before it is given up.
	reopenDrain = 5 * time.Second
	// reopenWait bounds how long a reopen waits for a read-only reader of
	// the file (another process) to let go of it.
	reopenWait = 2 * time.Minute
	// maxIdleConns is database/sql's default, restored after a reopen.
	maxIdleConns = 2
)

// errBusy: a connection stayed in use; the database was not reopened.
var errBusy = errors.New("journal: reopen: a connection stayed in use")

// reopen closes the database of db (opened on r) and opens it again; init
// runs on a connection of the new database before any other use of it.
// It returns errBusy, with nothing changed, when connections stay in use;
// any other error leaves the journal closed (every later use fails with it).
func (r *reopener) reopen(ctx context.Context, db *sql.DB, init func(driver.Conn) error) error {
	r.mu.Lock()
	if r.paused || r.c == nil {
		r.mu.Unlock()
		return errBusy
	}
	r.paused = true
	r.mu.Unlock()
	resume := func() {
		r.mu.Lock()
		r.paused = false
		r.cond.Broadcast()
		r.mu.Unlock()
		db.SetMaxIdleConns(maxIdleConns)
	}
	db.SetMaxIdleConns(0)
	for deadline := time.Now().Add(r.drain); ; {
		r.mu.Lock()
		open := db.Stats().OpenConnections - r.waiting
		r.mu.Unlock()
		if open <= 0 {
			break
		}
		if time.Now().After(deadline) {
			resume()
			return errBusy
		}
		time.Sleep(time.Millisecond)
	}
	err := r.swap(ctx, init)
	resume()
	return err
}

// swap closes the connector and opens a new one (paused, nothing open).
func (r *reopener) swap(ctx context.Context, init func(driver.Conn) error) error {
	r.mu.Lock()
	old := r.c
	r.c = nil
	r.mu.Unlock()
	err := old.Close()
	if r.whileClosed != nil {
		r.whileClosed()
	}
	var c *duckdb.Connector
	if err == nil {
		c, err = r.open(ctx, init)
	}
	r.mu.Lock()
	r.c = c
	if err != nil {
		r.err = fmt.Errorf("journal: reopen: %w", err)
		err = r.err
	}
	r.mu.Unlock()
	return err
}

// open opens the database again, waiting (up to reopenWait) while another
// process holds DuckDB's lock on the file (a read-only reader), and runs
// init on a first connection.
func (r *reopener) open(ctx context.Context, init func(driver.Conn) error) (*duckdb.Connector, error) {
	deadline := time.Now().Add(reopenWait)
	for {
		c, err := duckdb.NewConnector(r.dsn, nil)
		if err == nil {
			conn, cerr := c.Connect(ctx)
			if cerr == nil {
				cerr = init(conn)
				if clerr := conn.Close(); cerr == nil {
					cerr = clerr
				}
			}
			if cerr != nil {
				c.Close()
				return nil, cerr
			}
			return c, nil
		}
		if !lockConflict(err) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockConflict reports DuckDB's refusal to open a file another process
// holds (damaged names it ErrLocked).
func lockConflict(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Could not set lock") || strings.Contains(msg, "Conflicting lock")
}

// reopen closes the journal's DuckDB database and opens it again (see the
// top of this file), with the same settings. The caller has stopped the
// writer and checkpointed (the WAL is empty). errBusy (connections stayed
// in use) is not a failure: the database stays as it was.
func (j *DuckDB) reopen(ctx context.Context) error {
	j.threads.mu.Lock()
	threads, large := j.threads.cur, j.threads.large
	j.threads.mu.Unlock()
	init := func(c driver.Conn) error {
		ex, ok := c.(driver.ExecerContext)
		if !ok {
			return errors.New("journal: reopen: connection cannot execute")
		}
		stmts := []string{disableShutdownCheckpoint, storageSQL(large)}
		if threads > 0 {
			stmts = append(stmts, fmt.Sprintf("SET threads = %d", threads))
		}
		for _, q := range stmts {
			if _, err := ex.ExecContext(ctx, q, nil); err != nil {
				return err
			}
		}
		return nil
	}
	err := j.re.reopen(ctx, j.db, init)
	if errors.Is(err, errBusy) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}
