package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paybatch/paybatch"
)

// MemoryLimit is the DuckDB memory_limit of a journal. 96 MB (from 128)
// with a run's checkpoints every 32 MB of WAL (runWAL) and folds in pieces
// (foldEvents) took a 1M-row submit's peak RSS from ≈ 310 to ≈ 285 MB
// (BENCHMARKS.md #19); at 64 MB a 1M-row submit still ran out at its last
// fold or tally. With the database reopened after each run checkpoint
// (duckdb_reopen.go) and submit's FreeAtOnce the peak is ≈ 240 MB; 64 MB
// then passed at 1M (221 MB) but was not kept: the margin against an
// out-of-memory failure is worth more than 20 MB.
const MemoryLimit = "96MB"

// Options tune OpenDuckDB. The zero value works.
type Options struct {
	// Lock is the journal's lock, already held by the caller (who releases
	// it); nil: OpenDuckDB takes it and Close releases it.
	Lock *Lock
	// PageRows is how many rows of a phase Pages holds at once (default
	// 4096); ChunkRows how many input rows Ingest compares at once (default
	// 10,000). Tests lower them.
	PageRows, ChunkRows int
	// CheckpointWAL is the WAL size at which a run pauses its writes for a
	// checkpoint (CheckpointDue; default runWAL). Tests lower it.
	CheckpointWAL int64
	// KeepSendStates: when a file's state changes are committed (a batch
	// being sent), its rows' latest states are read in the background and
	// then kept current by the commits, so that pages by state of a batch
	// being sent (paybatch serve) find them ready; ≈ 8 bytes a row for at
	// most two files. Off for the CLI, which pages by state nothing.
	KeepSendStates bool
	// Large, when set, is called once, when the journal turns out large:
	// its file and WAL hold largeJournalBytes when it is opened (called
	// before DuckDB reads them), it holds smallJournalRows rows, or an
	// input fills an ingest chunk — the turn at which DuckDB gets its
	// threads (duckdb_threads.go). The binary's submit has DuckDB's
	// allocator free at once from then on (FreeAtOnce): that is for the
	// peak memory of large runs, while a small run's memory is small either
	// way and returning each freed page at once costs it CPU — DuckDB's
	// checkpoint takes a fresh 256 KiB block for each column it writes,
	// its fold and opening churn the same way, and each block comes back
	// as page faults. A 10-row submit took ≈ 0.43 cpu-s with decay 0 from
	// the start, ≈ 0.32 with DuckDB's decay (1 s) kept (13,100 → 9,400
	// minor page faults; BENCHMARKS.md #19).
	Large func()

	// beforeCheckpoint, when set (tests), runs in Close between taking the
	// protected copy and the CHECKPOINT.
	beforeCheckpoint func()
	// foldEvents: how many state changes a fold applies at once (default
	// foldEvents); tests lower it.
	foldEvents int64
	// logLinger: the shortest linger at which the writer logs its changes
	// (default logLinger, duckdb_changelog.go); tests lower it.
	logLinger time.Duration
	// whileReopening, when set (tests), runs during each reopen while the
	// database is closed (duckdb_reopen.go).
	whileReopening func()
}

// DuckDB is the journal in a DuckDB file: the embedded default backend.
type DuckDB struct {
	db      *sql.DB
	re      *reopener // db's connector: reopens the database (duckdb_reopen.go)
	path    string
	lock    *Lock
	ownLock bool

	pageRows  int
	chunkRows int
	runWAL    int64

	foldEvents int64         // state changes a fold applies at once
	logLinger  time.Duration // the shortest linger whose writer logs its changes

	wmu       sync.Mutex // serialises writer start/stop
	writer    *GroupWriter
	committer *duckCommitter
	linger    time.Duration
	// paced is the committer while its writer logs its changes
	// (duckdb_changelog.go), for materialise; paceMu guards it and orders
	// a reader's materialise against the writer's stop.
	paceMu sync.Mutex
	paced  *duckCommitter

	threads threadPolicy // DuckDB's thread count (duckdb_threads.go)
	large   func()       // Options.Large, called at most once; nil: none

	beforeCheckpoint func()

	stateIdx stateIndex // latest states of files read while changes wait (duckdb_states.go)
	// Reads ahead of kept states (readAhead) run on goroutines of their
	// own until Close, which cancels them (bgStop) and waits (bg).
	bgCtx  context.Context
	bgStop context.CancelFunc
	bg     sync.WaitGroup

	pmu      sync.Mutex // guards the published counts and server
	counts   []StateCount
	countsAt time.Time
	server   string // the address of the paybatch serve holding the journal
}

var _ Journal = (*DuckDB)(nil)

// OpenDuckDB opens (creating if needed) the journal at path and migrates
// it to the current schema. A killed run's pending state changes are
// folded in. Opening is short and bounded, and is not cancelled with ctx:
// an interrupt lands on the work that follows, never half-way into the
// journal's creation or migration.
func OpenDuckDB(ctx context.Context, path string, opts Options) (*DuckDB, error) {
	ctx = context.WithoutCancel(ctx)
	lk, own := opts.Lock, false
	if lk == nil {
		var err error
		if lk, err = TakeLock(path); err != nil {
			return nil, err
		}
		own = true
	} else if lk.Journal() != path {
		return nil, fmt.Errorf("journal %s: lock is for %s", path, lk.Journal())
	}
	release := func() {
		if own {
			_ = lk.Release()
		}
	}
	if _, err := restoreCheckpointCopy(path); err != nil {
		release()
		return nil, err
	}
	large := opts.Large
	if large != nil {
		large = sync.OnceFunc(large)
		if largeOnDisk(path) {
			large() // before DuckDB reads it
		}
	}
	if err := createDuckDB(path); err != nil {
		release()
		return nil, err
	}
	db, re, err := openFile(ctx, path)
	if err != nil {
		release()
		return nil, err
	}
	if _, err := migrate(ctx, db, path); err != nil {
		db.Close()
		release()
		return nil, damaged(path, err)
	}
	re.whileClosed = opts.whileReopening
	j := &DuckDB{db: db, re: re, path: path, lock: lk, ownLock: own, pageRows: opts.PageRows, chunkRows: opts.ChunkRows,
		runWAL: opts.CheckpointWAL, large: large,
		beforeCheckpoint: opts.beforeCheckpoint, foldEvents: opts.foldEvents, logLinger: opts.logLinger}
	j.bgCtx, j.bgStop = context.WithCancel(ctx)
	if j.pageRows <= 0 {
		j.pageRows = pageSize
	}
	if j.chunkRows <= 0 {
		j.chunkRows = chunkRows
	}
	if j.runWAL <= 0 {
		j.runWAL = runWAL
	}
	if j.foldEvents <= 0 {
		j.foldEvents = foldEvents
	}
	if j.logLinger <= 0 {
		j.logLinger = logLinger
	}

	if err := j.replayChangeLog(ctx); err != nil {
		db.Close()
		release()
		return nil, err
	}
	if err := j.fold(ctx); err != nil {
		db.Close()
		release()
		return nil, damaged(path, err)
	}
	if err := j.initThreads(ctx); err != nil {
		db.Close()
		release()
		return nil, err
	}
	j.stateIdx.keepSends = opts.KeepSendStates
	return j, nil
}

// dsn opens a journal with extensions never fetched, memory_limit
// bounding DuckDB's buffers (it spills beyond it): with the run's rows paged
// from the journal, the process's memory stays flat whatever the batch size
// (BENCHMARKS.md); the allocator's background threads, which hand memory
// DuckDB freed back to the system on time (a 200k-row submit, measured with
// one DuckDB thread, peaked 50 MB lower with them, #19); and a
// checkpoint_threshold no WAL reaches, so DuckDB never checkpoints on its
// own: the journal checkpoints only under a protected copy
// (duckdb_checkpoint.go).
func dsn(path string) string {
	return path + "?autoinstall_known_extensions=false&autoload_known_extensions=false&memory_limit=" + MemoryLimit +
		"&allocator_background_threads=true&checkpoint_threshold=" + noAutoCheckpoint
}

// noAutoCheckpoint is a WAL size no journal reaches.
const noAutoCheckpoint = "1000TB"

// openFile opens an existing journal file, naming damage as damage. The
// database is opened on a reopener (duckdb_reopen.go).
func openFile(ctx context.Context, path string) (*sql.DB, *reopener, error) {
	if err := checkHeader(path); err != nil {
		return nil, nil, err
	}
	re, err := newReopener(dsn(path))
	if err != nil {
		return nil, nil, damaged(path, err)
	}
	db := sql.OpenDB(re)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, damaged(path, err)
	}
	// Nor at Close: Close checkpoints itself, under a protected copy.
	if _, err := db.ExecContext(ctx, disableShutdownCheckpoint); err != nil {
		db.Close()
		return nil, nil, damaged(path, err)
	}
	return db, re, nil
}

// disableShutdownCheckpoint is run on every opening of the database.
const disableShutdownCheckpoint = "PRAGMA disable_checkpoint_on_shutdown"

// checkHeader refuses a file that is not a DuckDB database (magic "DUCK" at
// byte 8) and names a file too short to hold the header as damaged.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 12)
	n, err := io.ReadFull(f, head)
	switch {
	case n < len(head) && n > 0 || errors.Is(err, io.ErrUnexpectedEOF):
		return &DamagedError{Path: path, Err: fmt.Errorf("file ends after %d bytes", n)}
	case errors.Is(err, io.EOF):
		return &DamagedError{Path: path, Err: errors.New("file is empty")}
	case err != nil:
		return fmt.Errorf("journal %s: %w", path, err)
	case string(head[8:12]) != "DUCK":
		return fmt.Errorf("journal %s: %w (not a DuckDB database file)", path, ErrNotJournal)
	}
	return nil
}

// DamagedError is a journal DuckDB could not read.
type DamagedError struct {
	Path string
	Err  error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("journal %s is damaged: %v; restore it from backup; do not delete it — deleting relies on the providers' 24 h replay window to stop a second send",
		e.Path, e.Err)
}

func (e *DamagedError) Unwrap() []error { return []error{ErrDamaged, e.Err} }

// damaged names the storage errors DuckDB gives for a truncated or
// overwritten file as damage; other errors pass through.
func damaged(path string, err error) error {
	if err == nil {
		return nil
	}
	var de *DamagedError
	if errors.As(err, &de) {
		return err
	}
	if lockConflict(err) {
		return fmt.Errorf("%s: %w (%v)", path, ErrLocked, err)
	}
	msg := err.Error()
	for _, s := range []string{"Could not read enough bytes", "orrupt", "checksum", "Serialization Error",
		"Failed to deserialize", "not a valid DuckDB database file"} {
		if strings.Contains(msg, s) {
			return &DamagedError{Path: path, Err: errors.New(strings.TrimPrefix(msg, "database/sql/driver: could not connect to database: "))}
		}
	}
	return err
}

// SQL is the database handle for tables other packages add through
// migrations of their own in this package (the web server's web_* tables,
// 0005_web.sql). The journal's own tables are read and written only through
// this package's methods (Rows, Snapshot, IDsFromOtherFiles, …).
func (j *DuckDB) SQL() *sql.DB { return j.db }

// Name is the journal's path.
func (j *DuckDB) Name() string { return j.path }

// Close flushes the journal, checkpoints it under a protected copy (when
// its WAL has grown enough, see duckdb_checkpoint.go), closes it and
// releases its lock (when OpenDuckDB took it).
func (j *DuckDB) Close() error {
	ctx := context.Background()
	j.stateIdx.mu.Lock() // no read ahead starts after this (readAhead)
	j.bgStop()
	j.stateIdx.mu.Unlock()
	j.bg.Wait()
	err := j.Flush(ctx)
	if err == nil {
		err = j.checkpoint(ctx, closeWAL)
	}
	if cerr := j.db.Close(); err == nil {
		err = cerr
	}
	if j.ownLock {
		if uerr := j.lock.Release(); err == nil {
			err = uerr
		}
	}
	return err
}

// Publish writes the holder's progress beside the journal. The journal's
// counts are recomputed when older than 10 s (and at every Flush).
func (j *DuckDB) Publish(ctx context.Context, p Progress) error {
	j.pmu.Lock()
	counts, at := j.counts, j.countsAt
	j.pmu.Unlock()
	if counts == nil || time.Since(at) > 10*time.Second {
		var err error
		if counts, err = j.tableCounts(ctx); err != nil {
			return err
		}
		at = time.Now().UTC()
		j.pmu.Lock()
		j.counts, j.countsAt = counts, at
		j.pmu.Unlock()
	}
	p.Counts, p.CountsAt = counts, at
	j.pmu.Lock()
	p.Server = j.server
	j.pmu.Unlock()
	return j.lock.Publish(p)
}

// HeldByServer records that a `paybatch serve` at url holds the journal:
// every progress snapshot says so from now on (status and history, refused
// the lock, point there), starting with one published now.
func (j *DuckDB) HeldByServer(ctx context.Context, url string) error {
	j.pmu.Lock()
	j.server = url
	j.pmu.Unlock()
	return j.Publish(ctx, Progress{Phase: "serve"})
}

// tableCounts counts the journal table (as of the last fold).
func (j *DuckDB) tableCounts(ctx context.Context) ([]StateCount, error) {
	return j.counts0(ctx, `SELECT provider, kind, state, outcome, count(*) FROM journal
		GROUP BY ALL ORDER BY provider, kind, state, outcome`)
}

// Counts groups the journal (latest states) by provider, kind, state and
// outcome.
func (j *DuckDB) Counts(ctx context.Context) ([]StateCount, error) {
	return j.counts0(ctx, `SELECT provider, kind, state, outcome, count(*) FROM journal_export
		GROUP BY ALL ORDER BY provider, kind, state, outcome`)
}

func (j *DuckDB) counts0(ctx context.Context, q string) ([]StateCount, error) {
	rs, err := j.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("journal: counts: %w", err)
	}
	defer rs.Close()
	var out []StateCount
	for rs.Next() {
		var c StateCount
		var p, k, s, o string
		if err := rs.Scan(&p, &k, &s, &o, &c.Rows); err != nil {
			return nil, fmt.Errorf("journal: counts: %w", err)
		}
		c.Provider, c.Kind, c.State, c.Outcome = paybatch.Provider(p), paybatch.Kind(k), paybatch.State(s), paybatch.Outcome(o)
		out = append(out, c)
	}
	return out, rs.Err()
}

// Rows returns the rows matching q (latest states).
func (j *DuckDB) Rows(ctx context.Context, q Query) ([]*Row, error) {
	where, args := q.where()
	const order = " ORDER BY source_file, source_sheet, source_row, key"
	if q.Limit <= 0 || q.SourceFile == "" || q.ThroughRow > 0 {
		wide, _, largs, err := j.latest(ctx, q)
		if err != nil {
			return nil, err
		}
		sq := "SELECT * FROM (" + wide + ") WHERE " + where + order
		if q.Limit > 0 {
			sq += fmt.Sprintf(" LIMIT %d", q.Limit)
		}
		return j.readRows(ctx, sq, append(largs, args...)...)
	}
	// A page of one file: the rows are chosen over the few narrow columns
	// the condition reads, in a window after AfterRow that grows until it
	// holds a page (or is the rest of the file), then read in full from the
	// row range they span; the scans skip the rest by their zone maps.
	// Sorting a million full rows to keep fifty costs a second.
	//
	// While state changes wait to be folded, a filter on the state finds
	// its page's rows in the file's kept states instead (duckdb_states.go),
	// and they are read by their rows.
	//
	// Whether changes wait is asked once for the page's queries.
	pending, err := j.unfolded(ctx)
	if err != nil {
		return nil, err
	}
	var lo, hi sql.NullInt64
	rows, found, err := j.pageFromStates(ctx, q, pending)
	if err != nil {
		return nil, err
	}
	if pending && !q.filtersState() && q.MerchantTxID == "" {
		// A page of every row while changes wait (a batch being sent):
		// its filters by state may follow; their states are read now, in
		// the background.
		j.stateIdx.mu.Lock()
		j.readAhead(q.SourceFile, false)
		j.stateIdx.mu.Unlock()
	}
	if found && len(rows) > 0 {
		lo = sql.NullInt64{Int64: int64(slices.Min(rows)), Valid: true}
		hi = sql.NullInt64{Int64: int64(slices.Max(rows)), Valid: true}
	}
	for w := 4 * q.Limit; !found; w *= 8 {
		r := q
		if w < 1<<24 {
			r.ThroughRow = q.AfterRow + w
		}
		_, narrow, largs := latestFor(pending, r)
		var n int
		if err := j.db.QueryRowContext(ctx, `SELECT count(*), min(source_row), max(source_row) FROM (SELECT source_row FROM (`+narrow+`) WHERE `+where+order+
			fmt.Sprintf(" LIMIT %d)", q.Limit), append(largs, args...)...).Scan(&n, &lo, &hi); err != nil {
			return nil, fmt.Errorf("journal: read: %w", err)
		}
		if n == q.Limit || w >= 1<<24 {
			break
		}
	}
	if !lo.Valid {
		return nil, nil
	}
	r := q
	r.AfterRow, r.ThroughRow = int(lo.Int64)-1, int(hi.Int64)
	wide, _, largs := latestFor(pending, r, rows...)
	sq := "SELECT * FROM (" + wide + ") WHERE " + where + order + fmt.Sprintf(" LIMIT %d", q.Limit)
	return j.readRows(ctx, sq, append(largs, args...)...)
}

// narrowColumns are the key, source and the columns a Query's condition
// reads.
const narrowColumns = `key, source_file, source_sheet, source_row, merchant_transaction_id, state, outcome, problem`

// narrowLatest is narrowColumns with the latest event (e) applied to the
// journal row (j).
const narrowLatest = `j.key, j.source_file, j.source_sheet, j.source_row, j.merchant_transaction_id,
	if(e.key IS NULL, j.state, e.state) AS state, if(e.key IS NULL, j.outcome, e.outcome) AS outcome,
	if(e.key IS NULL, j.problem, e.problem) AS problem`

// latest returns what reads of the latest rows matching q select from,
// with every column (wide) and with narrowColumns, and the arguments of
// their placeholders (before the caller's). They hold the rows of q's
// file and id (and source rows after AfterRow, through ThroughRow, when
// set) — the conditions on what no state change alters, which reach the
// table scan (its zone maps skip the rest). With no state change waiting
// to be folded — the usual case outside a run, as Flush folds them — they
// read the journal table itself, so that a condition on state or outcome
// reaches the scan too; else the latest event of each of those rows is
// applied (latestOf).
func (j *DuckDB) latest(ctx context.Context, q Query, rows ...int) (wide, narrow string, args []any, err error) {
	pending, err := j.unfolded(ctx)
	if err != nil {
		return "", "", nil, err
	}
	wide, narrow, args = latestFor(pending, q, rows...)
	return wide, narrow, args, nil
}

// latestFor is latest's queries once it is known whether state changes
// wait to be folded (pending).
func latestFor(pending bool, q Query, rows ...int) (wide, narrow string, args []any) {
	jcond, args := q.sourceCond(rows...)
	if !pending {
		return "SELECT " + journalColumns + " FROM journal WHERE " + jcond, "SELECT " + narrowColumns + " FROM journal WHERE " + jcond, args
	}
	return latestOf(latestColumns(), jcond), latestOf(narrowLatest, jcond), append(args, args...)
}

// unfolded says whether state changes wait to be folded into the journal
// table (journal_events holds any).
func (j *DuckDB) unfolded(ctx context.Context) (bool, error) {
	if err := j.materialise(); err != nil {
		return false, err
	}
	var pending bool
	if err := j.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM journal_events)`).Scan(&pending); err != nil {
		return false, fmt.Errorf("journal: read: %w", err)
	}
	return pending, nil
}

// sourceCond is q's condition on the columns no state change alters (file,
// id, and the source rows after AfterRow, through ThroughRow, and among
// rows when given), and its arguments.
func (q Query) sourceCond(rows ...int) (string, []any) {
	var args []any
	cond := []string{"true"}
	if q.SourceFile != "" {
		cond = append(cond, "source_file = ?")
		args = append(args, q.SourceFile)
	}
	if q.MerchantTxID != "" {
		cond = append(cond, "merchant_transaction_id = ?")
		args = append(args, q.MerchantTxID)
	}
	if q.AfterRow > 0 {
		cond = append(cond, "source_row > ?")
		args = append(args, q.AfterRow)
	}
	if q.ThroughRow > 0 {
		cond = append(cond, "source_row <= ?")
		args = append(args, q.ThroughRow)
	}
	if len(rows) > 0 {
		cond = append(cond, "source_row IN ("+placeholders(len(rows))+")")
		for _, r := range rows {
			args = append(args, r)
		}
	}
	return strings.Join(cond, " AND "), args
}

// filtersState says whether q's condition reads the state (state, outcome
// or problem).
func (q Query) filtersState() bool {
	return len(q.States) > 0 || len(q.Outcomes) > 0 || q.Attention
}

// CountRows counts the rows matching q (latest states).
func (j *DuckDB) CountRows(ctx context.Context, q Query) (int, error) {
	where, args := q.where()
	q.AfterRow, q.ThroughRow = 0, 0 // ignored
	_, narrow, largs, err := j.latest(ctx, q)
	if err != nil {
		return 0, err
	}
	var n int
	if err := j.db.QueryRowContext(ctx, "SELECT count(*) FROM ("+narrow+") WHERE "+where, append(largs, args...)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("journal: count: %w", err)
	}
	return n, nil
}

// where is q's condition on the latest rows (without the keyset).
func (q Query) where() (string, []any) {
	where := []string{"true"}
	var args []any
	if len(q.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(q.States))+")")
		for _, s := range q.States {
			args = append(args, string(s))
		}
	}
	if len(q.Outcomes) > 0 {
		where = append(where, "outcome IN ("+placeholders(len(q.Outcomes))+")")
		for _, o := range q.Outcomes {
			args = append(args, string(o))
		}
	}
	if q.SourceFile != "" {
		where = append(where, "source_file = ?")
		args = append(args, q.SourceFile)
	}
	if q.MerchantTxID != "" {
		where = append(where, "merchant_transaction_id = ?")
		args = append(args, q.MerchantTxID)
	}
	if q.Attention {
		where = append(where, `(state NOT IN ('final', 'accepted') OR outcome IN ('failed', 'cancelled') OR problem <> '')`)
	}
	return strings.Join(where, " AND "), args
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// RecordRejects stores rows skipped under --allow-partial, card numbers
// masked.
func (j *DuckDB) RecordRejects(ctx context.Context, rejects []Reject) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: rejects: %w", err)
	}
	defer tx.Rollback()
	for _, r := range rejects {
		_, err := tx.ExecContext(ctx, `INSERT INTO rejects SELECT ?, ?, ?, ?, ?, ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM rejects WHERE source_file = ? AND source_sheet = ? AND source_row = ? AND column_name = ?)`,
			r.Source.File, r.Source.Sheet, r.Source.Row, r.Column,
			paybatch.MaskCardNumbers(r.Value), paybatch.MaskCardNumbers(r.Reason), r.MerchantTxID,
			r.Source.File, r.Source.Sheet, r.Source.Row, r.Column)
		if err != nil {
			return fmt.Errorf("journal: rejects: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: rejects: %w", err)
	}
	return nil
}

// Rejects returns every recorded reject in source order.
func (j *DuckDB) Rejects(ctx context.Context) ([]Reject, error) {
	rs, err := j.db.QueryContext(ctx, `SELECT coalesce(source_file, ''), coalesce(source_sheet, ''), coalesce(source_row, 0),
		coalesce(column_name, ''), coalesce(value, ''), coalesce(reason, ''), coalesce(merchant_transaction_id, '')
		FROM rejects ORDER BY source_file, source_sheet, source_row, column_name`)
	if err != nil {
		return nil, fmt.Errorf("journal: rejects: %w", err)
	}
	defer rs.Close()
	var out []Reject
	for rs.Next() {
		var r Reject
		if err := rs.Scan(&r.Source.File, &r.Source.Sheet, &r.Source.Row, &r.Column, &r.Value, &r.Reason, &r.MerchantTxID); err != nil {
			return nil, fmt.Errorf("journal: rejects: %w", err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// Conflicts returns every recorded conflict in detection order.
func (j *DuckDB) Conflicts(ctx context.Context) ([]Conflict, error) {
	rs, err := j.db.QueryContext(ctx, `SELECT c.key, c.merchant_transaction_id, c.source_file, c.source_sheet, c.source_row,
			c.journal_body_sha256, c.new_body_sha256, c.new_amount_minor, coalesce(c.currency, ''), coalesce(j.state, '')
		FROM conflicts c LEFT JOIN journal_export j ON j.key = c.key
		ORDER BY c.detected_at, c.source_file, c.source_sheet, c.source_row`)
	if err != nil {
		return nil, fmt.Errorf("journal: conflicts: %w", err)
	}
	defer rs.Close()
	return scanConflicts(rs)
}

func scanConflicts(rs *sql.Rows) ([]Conflict, error) {
	var out []Conflict
	for rs.Next() {
		var (
			c            Conflict
			srcRow       int64
			amount       sql.NullInt64
			currency, st string
		)
		if err := rs.Scan(&c.Key, &c.MerchantTxID, &c.Source.File, &c.Source.Sheet, &srcRow, &c.JournalHash, &c.NewHash,
			&amount, &currency, &st); err != nil {
			return nil, fmt.Errorf("journal: conflicts: %w", err)
		}
		c.Source.Row, c.State = int(srcRow), paybatch.State(st)
		if currency != "" {
			cur, err := paybatch.ParseCurrency(currency)
			if err != nil {
				return nil, fmt.Errorf("journal: conflict %s: %w", c.Key, err)
			}
			c.NewAmount.Currency = cur
		}
		c.NewAmount.Minor = amount.Int64
		out = append(out, c)
	}
	return out, rs.Err()
}

// RecordInput notes that a file was processed (replacing an earlier note of
// the same path and hash).
func (j *DuckDB) RecordInput(ctx context.Context, in Input, at time.Time) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: inputs: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM inputs WHERE path = ? AND sha256 = ?`, in.Path, in.SHA256); err != nil {
		return fmt.Errorf("journal: inputs: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?)`,
		in.Path, in.SHA256, in.Rows, string(in.Kind), string(in.Provider), at.UTC()); err != nil {
		return fmt.Errorf("journal: inputs: %w", err)
	}
	return tx.Commit()
}

// InputProcessed reports whether a file with this content hash was
// submitted from path before and every row journaled from it is finished.
func (j *DuckDB) InputProcessed(ctx context.Context, path, sha256 string) (bool, error) {
	var seen, open int
	err := j.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM inputs WHERE path = ? AND sha256 = ?),
		(SELECT count(*) FROM journal_export WHERE source_file = ? AND state NOT IN ('final', 'declined', 'rejected', 'conflict'))`,
		path, sha256, path).Scan(&seen, &open)
	if err != nil {
		return false, fmt.Errorf("journal: inputs: %w", err)
	}
	return seen > 0 && open == 0, nil
}
