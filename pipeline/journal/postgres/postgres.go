// Package postgres is the journal on PostgreSQL: the same journal.Journal
// as the embedded DuckDB file, shared by many paybatch processes on many
// hosts. The schema comes from numbered migrations (migrations/, the DuckDB
// journal's numbers in PostgreSQL's dialect); the run set of each process
// lives in temporary tables of a connection of its own; state changes are
// committed in groups straight into journal, and a row's state never goes
// backwards, whoever writes it.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paybatch/paybatch/pipeline/journal"
)

// Journal is a journal.Journal on PostgreSQL.
type Journal struct {
	pool   *pgxpool.Pool
	name   string // the URL, for messages (it never holds a password)
	holder string // this process's name in leases and progress

	rsMu sync.Mutex    // one statement at a time on rs
	rs   *pgxpool.Conn // holds the run set's temporary tables and claimKey's lock

	// claimKey names this process on the rows it claims (journal.claimed_by):
	// the advisory lock (claimSpace, claimKey) is held on rs for as long as
	// the journal is open, so other processes can tell a live claimer (its
	// rows "sending" are in flight) from a dead one (they are to resend).
	claimKey int32

	closeOnce sync.Once // Close runs once; a second Close returns the first's error
	closeErr  error

	pageRows int

	wmu    sync.Mutex
	writer *journal.GroupWriter
	linger time.Duration
	fence  *Lease // intents commit only while it is held (see Fence)
}

var _ journal.Journal = (*Journal)(nil)

// Options tune Open; the zero value works.
type Options struct {
	// Holder names this process in leases and progress (default
	// host:pid:random).
	Holder string
	// PageRows is how many rows Pages yields at once (default 8192).
	PageRows int
}

// Open connects to the journal at url (see ParseURL for what is accepted)
// and brings its schema to this binary's version. Many processes may hold
// one PostgreSQL journal at once.
func Open(ctx context.Context, url string, opt Options) (*Journal, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	name := Redact(url)
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", name, err)
	}
	j := &Journal{pool: pool, name: name, holder: opt.Holder, pageRows: opt.PageRows}
	if j.holder == "" {
		j.holder = defaultHolder()
	}
	if j.pageRows <= 0 {
		j.pageRows = 8192
	}
	if _, err := Migrate(ctx, pool, name); err != nil {
		pool.Close()
		return nil, err
	}
	j.rs, err = pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("journal %s: %w", name, err)
	}
	if _, err := j.rs.Exec(ctx, runSetDDL); err != nil {
		j.rs.Release()
		pool.Close()
		return nil, fmt.Errorf("journal %s: run set: %w", name, err)
	}
	if j.claimKey, err = takeClaimKey(ctx, j.rs); err != nil {
		j.rs.Release()
		pool.Close()
		return nil, fmt.Errorf("journal %s: claim key: %w", name, err)
	}
	return j, nil
}

// claimSpace is the first half of the advisory locks that name live
// processes (claimKey); migrateLock is a one-number lock, never in it.
const claimSpace = 0x70617963 // "payc"

// takeClaimKey takes, on rs, a session advisory lock (claimSpace, k) for a
// random k that no other process holds, and returns k. The server releases
// it when the session ends, however the process ended; TCP keepalives on
// the session let it notice a host that vanished within about a minute.
func takeClaimKey(ctx context.Context, rs *pgxpool.Conn) (int32, error) {
	if _, err := rs.Exec(ctx, `SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3`); err != nil {
		return 0, err
	}
	for range 16 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		k := int32(binary.BigEndian.Uint32(b[:]) & 0x7fffffff)
		if k == 0 {
			continue
		}
		var ok bool
		if err := rs.QueryRow(ctx, `SELECT pg_try_advisory_lock($1::integer, $2::integer)`, int32(claimSpace), k).Scan(&ok); err != nil {
			return 0, err
		}
		if ok {
			return k, nil
		}
	}
	return 0, errors.New("every key tried is held by another process")
}

// The run set of this process: temporary tables of its own connection,
// gone with the connection (and so with the process, however it dies).
const runSetDDL = `
CREATE TEMP TABLE run_set (ord bigint PRIMARY KEY, key text NOT NULL UNIQUE, body_sha256 text NOT NULL, fresh boolean NOT NULL);
CREATE TEMP TABLE run_conflicts (ord bigint NOT NULL, key text, merchant_transaction_id text, source_file text,
	source_sheet text, source_row integer, journal_body_sha256 text, new_body_sha256 text,
	new_amount_minor bigint, currency text, state text);`

func defaultHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Name is the journal's URL (without a password).
func (j *Journal) Name() string { return j.name }

// Holder is this process's name in leases and progress.
func (j *Journal) Holder() string { return j.holder }

// Pool gives the connection pool to this package's tools (export, check).
func (j *Journal) Pool() *pgxpool.Pool { return j.pool }

// Close flushes pending state changes and closes the journal.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() { j.closeErr = j.close() })
	return j.closeErr
}

func (j *Journal) close() error {
	err := j.Flush(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, derr := j.pool.Exec(ctx, `DELETE FROM progress WHERE holder = $1`, j.holder); derr != nil && err == nil {
		err = fmt.Errorf("journal %s: %w", j.name, derr)
	}
	// The claim key now, not when the server gets round to ending the
	// session: a process opening the journal next claims at once what this
	// one left "sending".
	j.rsMu.Lock()
	_, uerr := j.rs.Exec(ctx, `SELECT pg_advisory_unlock($1::integer, $2::integer)`, int32(claimSpace), j.claimKey)
	j.rsMu.Unlock()
	if uerr != nil && err == nil {
		err = fmt.Errorf("journal %s: %w", j.name, uerr)
	}
	j.rs.Release()
	j.pool.Close()
	return err
}

// Publish records this process's progress for readers in other processes.
func (j *Journal) Publish(ctx context.Context, p journal.Progress) error {
	p.PID = os.Getpid()
	if p.Updated.IsZero() {
		p.Updated = time.Now().UTC()
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("journal %s: progress: %w", j.name, err)
	}
	_, err = j.pool.Exec(ctx, `INSERT INTO progress (holder, snapshot, updated) VALUES ($1, $2, $3)
		ON CONFLICT (holder) DO UPDATE SET snapshot = excluded.snapshot, updated = excluded.updated`, j.holder, b, p.Updated)
	if err != nil {
		return fmt.Errorf("journal %s: progress: %w", j.name, err)
	}
	return nil
}

// Progress returns the snapshots published by the processes holding the
// journal, newest first.
func (j *Journal) Progress(ctx context.Context) ([]journal.Progress, error) {
	rows, err := j.pool.Query(ctx, `SELECT snapshot FROM progress ORDER BY updated DESC`)
	if err != nil {
		return nil, fmt.Errorf("journal %s: progress: %w", j.name, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (journal.Progress, error) {
		var b []byte
		var p journal.Progress
		if err := r.Scan(&b); err != nil {
			return p, err
		}
		return p, json.Unmarshal(b, &p)
	})
	if err != nil {
		return nil, fmt.Errorf("journal %s: progress: %w", j.name, err)
	}
	return out, nil
}

func (j *Journal) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("journal %s: %s: %w", j.name, what, err)
	}
	return fmt.Errorf("journal %s: %s: %w", j.name, what, err)
}
