package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/paybatch/paybatch"
)

// A run's rows live in the journal file, never all in memory, so a run's
// memory does not grow with the batch:
//
//   - ingest reads the input in chunks of chunkRows, compares each chunk
//     with the journal and the run so far by key (a join against the
//     chunk's keys), and appends what is new, a chunk per commit; an input
//     that fails half-way takes back what it journaled.
//   - run_keys: the run's rows (duplicates and conflicts excluded), by input
//     order (ord); fresh marks rows journaled for the first time.
//   - run_conflicts: input rows whose content differs from the journal's.
//   - run_rows: the journal rowids of the run's rows; each phase reads the
//     journal a rowid range (page) at a time.
//
// They are scratch: each Ingest (or SelectAccepted) drops and rebuilds
// them, and a run killed mid-way leaves nothing in them that the next run
// needs. One run set at a time per journal (the lock makes it one process).

// Halving both (from 20,000 and 8,192) took the Go heap's peak of a
// 200k-row submit from 73 to 43 MB (BENCHMARKS.md, #19); each chunk's
// comparison scans the journal's keys, so smaller chunks cost more scans.
const (
	// chunkRows is how many input rows ingest holds and compares at once.
	chunkRows = 10_000
	// pageSize is how many rows of a phase are in memory at once (plus the
	// requests in flight).
	pageSize = 4096
)

func (j *DuckDB) execAll(ctx context.Context, stmts ...string) error {
	for _, q := range stmts {
		if _, err := j.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("journal: %s: %w", strings.Fields(q)[0], err)
		}
	}
	return nil
}

func (j *DuckDB) dropScratch(ctx context.Context) error {
	return j.execAll(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS run_stage`, `DROP TABLE IF EXISTS run_keys`,
		`DROP TABLE IF EXISTS run_conflicts`, `DROP TABLE IF EXISTS run_work`, `DROP TABLE IF EXISTS run_rows`)
}

// ingester journals one input in one transaction on its own connection.
type ingester struct {
	j     *DuckDB
	conn  *sql.Conn
	now   time.Time
	res   *Ingested
	apps  []*duckdb.Appender
	chunk *duckdb.Appender // run_chunk: the keys of the chunk being compared
	keys  *duckdb.Appender // run_keys
	rows  *duckdb.Appender // journal
	confl *duckdb.Appender // run_conflicts
	// What the appenders took — run_keys rows (fresh ones), run_conflicts
	// rows — so that the run's counts need no query, and an input without
	// a conflict no statement for conflicts.
	keyRows, freshRows, conflictRows int
	// alone: nothing to compare a chunk with in SQL — the journal had no
	// row when the ingest began and no chunk has been compared yet (a new
	// journal's first chunk, which is all of a small batch).
	alone bool
}

// known is what the run so far and the journal know of a chunk's key.
type known struct {
	runHash, jHash, jState sql.NullString
}

type staged struct {
	ord int64
	row *Row
}

// Ingest journals an input's rows and leaves the run's rows in run_keys and
// run_rows. Nothing is journaled when src fails. Memory is bounded by the
// chunk size, whatever the input's size.
func (j *DuckDB) Ingest(ctx context.Context, src iter.Seq2[*Row, error], now time.Time) (Ingested, error) {
	var res Ingested
	// Rows are added (or, on failure, removed): kept states are dropped,
	// before and after, so none is built from a half-ingested file.
	j.stateIdx.rowsChanging()
	defer j.stateIdx.rowsChanging()
	if err := j.dropScratch(ctx); err != nil {
		return res, err
	}
	err := j.execAll(ctx, `CREATE TABLE run_keys (ord BIGINT NOT NULL, key VARCHAR NOT NULL, body_sha256 VARCHAR NOT NULL, fresh BOOLEAN NOT NULL)`,
		`CREATE TABLE run_conflicts (ord BIGINT NOT NULL, key VARCHAR, merchant_transaction_id VARCHAR, source_file VARCHAR,
			source_sheet VARCHAR, source_row INTEGER, journal_body_sha256 VARCHAR, new_body_sha256 VARCHAR,
			new_amount_minor BIGINT, currency VARCHAR, state VARCHAR)`)
	if err != nil {
		return res, err
	}
	in := &ingester{j: j, now: now, res: &res}
	if err := in.run(ctx, src); err != nil {
		return res, err
	}
	res.Rows, res.New, res.ConflictCount = in.keyRows, in.freshRows, in.conflictRows
	// The rowids the phases page through (journal rows are never deleted,
	// so a rowid names the same row for the whole run).
	err = j.execAll(ctx, `CREATE TABLE run_rows AS SELECT j.rowid AS jrow FROM run_keys k JOIN journal j ON j.key = k.key ORDER BY jrow`)
	if err != nil {
		return res, err
	}
	if err := j.checkUnique(ctx, res.Rows); err != nil {
		return res, err
	}
	if err := j.loadConflicts(ctx, &res); err != nil {
		return res, err
	}
	return res, nil
}

func (in *ingester) run(ctx context.Context, src iter.Seq2[*Row, error]) (err error) {
	defer func() {
		if cerr := in.close(); cerr != nil && err == nil {
			err = fmt.Errorf("journal: ingest: %w", cerr)
		}
		if err != nil {
			// Each chunk is committed as it is compared (one transaction
			// for a whole batch costs DuckDB memory in proportion to it),
			// so an input that fails half-way takes back what it
			// journaled: none of it was sent.
			_, derr := in.j.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM journal WHERE key IN (SELECT key FROM run_keys WHERE fresh)`)
			if derr != nil {
				err = fmt.Errorf("%w; and taking back the rows journaled before it: %w", err, derr)
			}
		}
	}()
	if err := in.open(ctx); err != nil {
		return err
	}
	size := in.j.chunkRows
	chunk := make([]staged, 0, size)
	var ord int64
	for row, err := range src {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("journal: ingest: %w", err)
		}
		ord++
		chunk = append(chunk, staged{ord, row})
		if len(chunk) == size {
			// An input of more than a chunk: DuckDB gets every core
			// (duckdb_threads.go).
			if err := in.j.growThreads(ctx); err != nil {
				return err
			}
			if err := in.compare(ctx, chunk); err != nil {
				return err
			}
			chunk = chunk[:0]
			if err := in.checkpoint(ctx); err != nil {
				return err
			}
		}
	}
	if err := in.compare(ctx, chunk); err != nil {
		return err
	}
	if err := in.flush(); err != nil {
		return err
	}
	if in.conflictRows == 0 {
		return nil
	}
	// The same edit seen again (in this input or an earlier run) is
	// recorded once.
	if _, err := in.conn.ExecContext(ctx, `INSERT INTO conflicts
		SELECT key, merchant_transaction_id, source_file, source_sheet, source_row, journal_body_sha256, new_body_sha256,
			new_amount_minor, currency, ?
		FROM run_conflicts c
		WHERE NOT EXISTS (SELECT 1 FROM conflicts x WHERE x.key = c.key AND x.new_body_sha256 = c.new_body_sha256)
		QUALIFY row_number() OVER (PARTITION BY key, new_body_sha256 ORDER BY ord) = 1
		ORDER BY ord`, in.now.UTC()); err != nil {
		return fmt.Errorf("journal: conflicts: %w", err)
	}
	return nil
}

// checkpoint folds the WAL into the file (under the protected copy) once it
// reaches the journal's run threshold: DuckDB holds the rows appended since
// the last checkpoint in memory, and a large input's ingest was the peak of
// a 1M-row submit's memory (#19).
func (in *ingester) checkpoint(ctx context.Context) error {
	if walSize(in.j.path) < in.j.runWAL {
		return nil
	}
	// The appenders commit what they hold as they close; the connection
	// goes too, so that the database can be reopened after the checkpoint
	// (duckdb_reopen.go: that gives back what DuckDB kept of the chunks).
	if err := in.close(); err != nil {
		return fmt.Errorf("journal: ingest: %w", err)
	}
	ctx = context.WithoutCancel(ctx)
	if err := in.j.checkpointNow(ctx); err != nil {
		return err
	}
	if err := in.j.reopen(ctx); err != nil {
		return err
	}
	return in.open(ctx)
}

// open takes a connection for the ingest, with the chunk's temporary table
// and the appenders.
func (in *ingester) open(ctx context.Context) error {
	c, err := in.j.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	in.conn = c
	if _, err := c.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE run_chunk (i INTEGER NOT NULL, key VARCHAR NOT NULL)`); err != nil {
		return fmt.Errorf("journal: ingest: %w", err)
	}
	if err := c.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM journal)`).Scan(&in.alone); err != nil {
		return fmt.Errorf("journal: ingest: %w", err)
	}
	return c.Raw(func(dc any) error {
		for _, t := range []struct {
			catalog, table string
			dst            **duckdb.Appender
		}{{"temp", "run_chunk", &in.chunk}, {"", "run_keys", &in.keys}, {"", "journal", &in.rows}, {"", "run_conflicts", &in.confl}} {
			a, err := duckdb.NewAppender(dc.(driver.Conn), t.catalog, "", t.table)
			if err != nil {
				return fmt.Errorf("journal: appender %s: %w", t.table, err)
			}
			in.apps = append(in.apps, a)
			*t.dst = a
		}
		return nil
	})
}

// close closes the appenders (which commits what they hold: the run's keys
// before the journal rows they name) and the connection.
func (in *ingester) close() error {
	var err error
	for _, a := range in.apps {
		if cerr := a.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	in.apps = nil
	if in.conn != nil {
		if cerr := in.conn.Close(); cerr != nil && err == nil {
			err = cerr
		}
		in.conn = nil
	}
	return err
}

// flush commits what the appenders hold: the run's keys before the journal
// rows they name, so a failure can always find what to take back.
func (in *ingester) flush() error {
	for _, a := range in.apps {
		if err := a.Flush(); err != nil {
			return fmt.Errorf("journal: ingest: %w", err)
		}
	}
	return nil
}

// compare classifies one chunk exactly as a sequential reader holding the
// whole input would: a row whose key the run already took is a duplicate
// (same content) or a conflict; otherwise a row whose content differs from
// the journal's is a conflict; otherwise it joins the run, and is appended
// to the journal when the journal does not hold it. The run so far and the
// journal are looked up by key in the database (this transaction's own
// appends included), only the chunk is in memory.
func (in *ingester) compare(ctx context.Context, chunk []staged) error {
	if len(chunk) == 0 {
		return nil
	}
	found := make([]known, len(chunk))
	// Alone, every key is unknown to the journal and the run: the join
	// would find nothing (duplicates within the chunk are found below).
	if in.alone {
		in.alone = false
	} else if err := in.lookUp(ctx, chunk, found); err != nil {
		return err
	}
	seen := make(map[string]string) // key → hash taken by this chunk
	for i, s := range chunk {
		r, k := s.row, found[i]
		var err error
		h, ok := seen[r.Key]
		if !ok && k.runHash.Valid {
			h, ok = k.runHash.String, true
		}
		switch {
		case ok && h == r.BodySHA256:
			in.res.Duplicates++
		case ok:
			err = in.conflict(s, h, "")
		case k.jHash.Valid && k.jHash.String != r.BodySHA256:
			err = in.conflict(s, k.jHash.String, k.jState.String)
		default:
			seen[r.Key] = r.BodySHA256
			if err = in.keys.AppendRow(s.ord, r.Key, r.BodySHA256, !k.jHash.Valid); err == nil {
				in.keyRows++
				if !k.jHash.Valid {
					in.freshRows++
					err = in.rows.AppendRow(journalArgs(r)...)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("journal: ingest %s: %w", r.Source, err)
		}
	}
	return nil
}

// lookUp finds the chunk's keys in the run so far and in the journal, by
// position in found.
func (in *ingester) lookUp(ctx context.Context, chunk []staged, found []known) error {
	for i, s := range chunk {
		if err := in.chunk.AppendRow(int32(i), s.row.Key); err != nil {
			return fmt.Errorf("journal: ingest: %w", err)
		}
	}
	if err := in.flush(); err != nil {
		return err
	}
	rs, err := in.conn.QueryContext(ctx, `SELECT c.i, r.body_sha256, j.body_sha256, j.state
		FROM temp.run_chunk c LEFT JOIN run_keys r ON r.key = c.key LEFT JOIN journal j ON j.key = c.key`)
	if err != nil {
		return fmt.Errorf("journal: ingest: compare: %w", err)
	}
	for rs.Next() {
		var i int
		var k known
		if err := rs.Scan(&i, &k.runHash, &k.jHash, &k.jState); err != nil {
			rs.Close()
			return fmt.Errorf("journal: ingest: compare: %w", err)
		}
		found[i] = k
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return fmt.Errorf("journal: ingest: compare: %w", err)
	}
	if _, err := in.conn.ExecContext(ctx, `DELETE FROM temp.run_chunk`); err != nil {
		return fmt.Errorf("journal: ingest: %w", err)
	}
	return nil
}

func (in *ingester) conflict(s staged, journalHash, state string) error {
	r := s.row
	in.conflictRows++
	return in.confl.AppendRow(s.ord, r.Key, r.MerchantTxID, r.Source.File, r.Source.Sheet, int32(r.Source.Row),
		journalHash, r.BodySHA256, amountArg(r.Amount), r.Amount.Currency.Code(), state)
}

// checkUnique verifies, before anything is sent, that the run's keys
// (unique by construction) name one journal row each — what a primary key
// would enforce: run_rows would otherwise hold more rows than the run.
func (j *DuckDB) checkUnique(ctx context.Context, runRows int) error {
	var n int
	if err := j.db.QueryRowContext(ctx, `SELECT count(*) FROM run_rows`).Scan(&n); err != nil {
		return fmt.Errorf("journal: unique keys: %w", err)
	}
	if n == runRows {
		return nil
	}
	var key string
	err := j.db.QueryRowContext(ctx, `SELECT j.key FROM journal j WHERE j.rowid IN (SELECT jrow FROM run_rows)
		GROUP BY j.key HAVING count(*) > 1 LIMIT 1`).Scan(&key)
	if err != nil {
		key = fmt.Sprintf("(%d rows for %d keys)", n, runRows)
	}
	return fmt.Errorf("journal %s: key %s: %w", j.path, key, ErrDuplicateKey)
}

// loadConflicts fills Result.Conflicts (the first maxResultConflicts, in
// input order; ConflictCount counts them all).
func (j *DuckDB) loadConflicts(ctx context.Context, res *Ingested) error {
	if res.ConflictCount == 0 {
		return nil
	}
	rs, err := j.db.QueryContext(ctx, `SELECT key, merchant_transaction_id, source_file, source_sheet, source_row,
			journal_body_sha256, new_body_sha256, new_amount_minor, currency, state
		FROM run_conflicts ORDER BY ord LIMIT ?`, MaxConflicts)
	if err != nil {
		return fmt.Errorf("journal: conflicts: %w", err)
	}
	defer rs.Close()
	res.Conflicts, err = scanConflicts(rs)
	return err
}

// SelectAccepted makes every accepted row (of provider, or all when empty)
// the run's rows.
func (j *DuckDB) SelectAccepted(ctx context.Context, provider paybatch.Provider) (int, error) {
	if err := j.dropScratch(ctx); err != nil {
		return 0, err
	}
	_, err := j.db.ExecContext(ctx, `CREATE TABLE run_rows AS SELECT rowid AS jrow FROM journal
		WHERE state = ? AND (? = '' OR provider = ?) ORDER BY jrow`,
		string(paybatch.StateAccepted), string(provider), string(provider))
	if err != nil {
		return 0, fmt.Errorf("journal: poll set: %w", err)
	}
	var n int
	if err := j.db.QueryRowContext(ctx, `SELECT count(*) FROM run_rows`).Scan(&n); err != nil {
		return 0, fmt.Errorf("journal: poll set: %w", err)
	}
	return n, nil
}

// Count counts the run's journal rows matching f. The journal table only
// changes when events are folded, so the caller flushes first when it needs
// the latest states.
func (j *DuckDB) Count(ctx context.Context, f Filter) (int, error) {
	cond, args := f.sql()
	var n int
	err := j.db.QueryRowContext(context.WithoutCancel(ctx), `SELECT count(*) FROM journal j
		WHERE j.rowid IN (SELECT jrow FROM run_rows) AND `+cond, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("journal: count: %w", err)
	}
	return n, nil
}

// sql is f as a condition on journal (aliased j).
func (f Filter) sql() (string, []any) {
	conds := []string{"true"}
	var args []any
	if len(f.States) > 0 {
		conds = append(conds, "j.state IN ("+placeholders(len(f.States))+")")
		for _, s := range f.States {
			args = append(args, string(s))
		}
	}
	if f.Pollable {
		conds = append(conds, "j.provider_id <> ''", "(j.poll_refused_at IS NULL OR j.poll_refused_at < ?)")
		args = append(args, f.PollStart.UTC())
	}
	return strings.Join(conds, " AND "), args
}

// Pages yields the run's journal rows matching f a rowid range at a time,
// in rowid order (input order for the rows a run journaled). The next page
// is read while the caller works on this one; at most two pages are held
// besides the caller's.
func (j *DuckDB) Pages(ctx context.Context, f Filter) iter.Seq2[[]*Row, error] {
	cond, args := f.sql()
	return func(yield func([]*Row, error) bool) {
		// The caller stops between pages; the reader stops with the caller.
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		type page struct {
			rows []*Row
			err  error
		}
		ch := make(chan page, 1)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(ch)
			send := func(p page) bool {
				select {
				case ch <- p:
					return p.err == nil
				case <-rctx.Done():
					return false
				}
			}
			var lo, hi sql.NullInt64
			if err := j.db.QueryRowContext(rctx, `SELECT min(jrow), max(jrow) FROM run_rows`).Scan(&lo, &hi); err != nil {
				send(page{err: fmt.Errorf("journal: read: %w", err)})
				return
			}
			size := int64(j.pageRows)
			q := "SELECT " + journalColumns + ` FROM journal j WHERE j.rowid BETWEEN ? AND ?
				AND j.rowid IN (SELECT jrow FROM run_rows WHERE jrow BETWEEN ? AND ?) AND ` + cond + ` ORDER BY j.rowid`
			for from := lo.Int64; lo.Valid && from <= hi.Int64; from += size {
				to := from + size - 1
				rows, err := j.readRows(rctx, q, append([]any{from, to, from, to}, args...)...)
				if (len(rows) > 0 || err != nil) && !send(page{rows, err}) {
					return
				}
			}
		}()
		defer func() { cancel(); wg.Wait() }()
		for p := range ch {
			if p.err != nil {
				yield(nil, p.err)
				return
			}
			if !yield(p.rows, nil) {
				return
			}
		}
	}
}

// Tally counts the run's rows by state and outcome and totals their
// amounts (as of the last Flush), in SQL: a handful of groups whatever the
// batch size. Sums are exact (DuckDB sums BIGINT into a 128-bit integer);
// one that does not fit in int64 minor units is an error.
func (j *DuckDB) Tally(ctx context.Context) (Tally, error) {
	res := Tally{States: make(map[paybatch.State]int), Outcomes: make(map[paybatch.Outcome]int),
		Totals: make(map[paybatch.State]paybatch.Totals)}
	rs, err := j.db.QueryContext(context.WithoutCancel(ctx), `SELECT state, outcome, currency, count(*), CAST(sum(amount_minor) AS VARCHAR)
		FROM journal WHERE rowid IN (SELECT jrow FROM run_rows) GROUP BY ALL`)
	if err != nil {
		return res, fmt.Errorf("journal: tally: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			state, outcome, currency string
			sum                      sql.NullString
			n                        int
		)
		if err := rs.Scan(&state, &outcome, &currency, &n, &sum); err != nil {
			return res, fmt.Errorf("journal: tally: %w", err)
		}
		st := paybatch.State(state)
		res.States[st] += n
		if outcome != "" {
			res.Outcomes[paybatch.Outcome(outcome)] += n
		}
		if !sum.Valid || sum.String == "0" {
			continue
		}
		minor, err := strconv.ParseInt(sum.String, 10, 64)
		if err != nil {
			return res, fmt.Errorf("journal: tally: %s %s total %s minor units: %w", state, currency, sum.String, err)
		}
		cur, err := paybatch.ParseCurrency(currency)
		if err != nil {
			return res, fmt.Errorf("journal: tally: %w", err)
		}
		t := res.Totals[st]
		if t == nil {
			t = paybatch.Totals{}
			res.Totals[st] = t
		}
		if err := t.Add(paybatch.Money{Currency: cur, Minor: minor}); err != nil {
			return res, fmt.Errorf("journal: tally: %w", err)
		}
	}
	return res, rs.Err()
}
