package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/duckdb/duckdb-go/v2"
)

// Copying out: a query's rows leave PostgreSQL by COPY … TO STDOUT (text
// format, one CopyData message per row) and enter DuckDB through a table
// function, one VARCHAR a row, split and cast exactly in SQL (CopyTable) —
// never row by row through database/sql, never a value at a time through
// an Appender, and never through a float.

// Type is a DuckDB column type CopyTable can fill.
type Type int

const (
	Varchar   Type = iota // text as is
	BigInt                // int64, exact
	Integer               // int32
	Boolean               // t / f
	Date                  // YYYY-MM-DD
	Timestamp             // UTC
)

// DuckDBType is the type's name in DuckDB DDL.
func (t Type) DuckDBType() string {
	return [...]string{"VARCHAR", "BIGINT", "INTEGER", "BOOLEAN", "DATE", "TIMESTAMP"}[t]
}

// Column is one column of a copy.
type Column struct {
	Name string
	Type Type
}

// ExportColumns are journal_export's columns (migration 0002), in order.
var ExportColumns = []Column{{"key", Varchar}, {"provider", Varchar}, {"kind", Varchar}, {"account", Varchar},
	{"merchant_transaction_id", Varchar}, {"amount_minor", BigInt}, {"currency", Varchar},
	{"state", Varchar}, {"outcome", Varchar}, {"provider_status", Varchar}, {"provider_id", Varchar}, {"order_id", Varchar},
	{"reason_code", Varchar}, {"problem", Varchar}, {"http_status", Integer}, {"attempts", Integer},
	{"source_file", Varchar}, {"source_sheet", Varchar}, {"source_row", Integer}, {"created_at", Timestamp},
	{"updated_at", Timestamp}, {"sent_at", Timestamp}, {"terminal", Varchar}, {"transaction_ref", Varchar},
	{"order_ref", Varchar}, {"mandate", Varchar}, {"collection_date", Date}, {"provider_amount_minor", BigInt},
	{"provider_date", Date}, {"replayed", Boolean}, {"polls", Integer}, {"polled_at", Timestamp}, {"final_at", Timestamp},
	{"poll_refused_at", Timestamp}}

// ReconcileColumns are the columns of journal_export that reconcile reads
// (reconcile/sql/journal_lines.sql), what FillReconcile copies: a column
// reconcile starts reading and this list lacks fails its SQL loudly
// (TestPostgresJournalThroughCLI reconciles both backends), never reads
// as NULL.
var ReconcileColumns = []Column{{"key", Varchar}, {"merchant_transaction_id", Varchar}, {"amount_minor", BigInt},
	{"provider_amount_minor", BigInt}, {"currency", Varchar}, {"state", Varchar}, {"outcome", Varchar},
	{"http_status", Integer}, {"provider_status", Varchar}, {"provider_id", Varchar}, {"reason_code", Varchar},
	{"problem", Varchar}, {"source_file", Varchar}, {"source_sheet", Varchar}, {"source_row", Integer},
	{"collection_date", Date}, {"provider_date", Date}, {"updated_at", Timestamp}}

// RejectColumns are rejects_export's columns, in order.
var RejectColumns = []Column{{"source_file", Varchar}, {"source_sheet", Varchar}, {"source_row", Integer},
	{"column_name", Varchar}, {"value", Varchar}, {"reason", Varchar}, {"merchant_transaction_id", Varchar}}

// CopyQuery is the COPY statement CopyTable runs (the benchmark's floor
// runs it too, discarding the rows).
func CopyQuery(view string, cols []Column) string {
	var b bytes.Buffer
	b.WriteString("COPY (SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if c.Type == Timestamp {
			b.WriteString("(" + c.Name + " AT TIME ZONE 'UTC') AS " + c.Name) // timestamptz → UTC, no offset
			continue
		}
		b.WriteString(c.Name)
	}
	b.WriteString(" FROM " + view + ") TO STDOUT")
	return b.String()
}

// copyOut runs view's COPY, its rows (text format, newlines cut) batched
// into p.full, while consume, on another goroutine, reads the batches
// (overlapping the network read with DuckDB's work) until p.full closes,
// handing each back to p.free; cancel stops the COPY.
func (j *Journal) copyOut(ctx context.Context, view string, cols []Column, consume func(p *batcher, cancel func())) error {
	if view != "journal_export" && view != "rejects_export" {
		return fmt.Errorf("journal %s: copy: %s is not an exported view", j.name, view)
	}
	conn, err := j.pool.Acquire(ctx)
	if err != nil {
		return j.wrap("copy", err)
	}
	defer conn.Release()
	// Timestamps in UTC, ISO.
	if _, err := conn.Exec(ctx, `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'`); err != nil {
		return j.wrap("copy", err)
	}
	p := &batcher{full: make(chan *batch, 2), free: make(chan *batch, 3)}
	for range 3 {
		p.free <- &batch{}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		consume(p, cancel)
		for b := range p.full { // what is left when consume stopped early
			p.free <- b.reset()
		}
	}()
	_, err = conn.Conn().PgConn().CopyTo(cctx, p, CopyQuery(view, cols))
	if err == nil {
		p.flush()
	}
	close(p.full)
	<-done
	if err != nil {
		return j.wrap("copy "+view, err)
	}
	return nil
}

// CopyTable copies view's rows into the DuckDB table catalog.table on
// conn, whose columns are cols in that order, and returns how many rows
// it copied (one snapshot). Each row crosses into DuckDB whole, as one
// VARCHAR that a table function hands over straight from the COPY (one
// cgo call a row, where an Appender makes one a value), and DuckDB
// splits, unescapes and casts the rows in one INSERT … SELECT, with no
// table in between. The casts are exact: bigint text to BIGINT, never
// through a float; a value that does not cast stops the copy.
//
// The copy runs on one DuckDB thread (copyThreads): DuckDB's threads
// setting is the database's, lowered for the copy and restored after it,
// so nothing else should run on conn's database meanwhile (reconcile
// holds its lock).
func (j *Journal) CopyTable(ctx context.Context, conn *sql.Conn, catalog, table, view string, cols []Column) (int64, error) {
	return j.copyTable(ctx, conn, catalog, table, view, cols, copyThreads)
}

// copyThreads is how many DuckDB threads CopyTable's INSERT runs on. One:
// the INSERT keeps insertion order, so its pipeline runs on one thread
// whatever the setting, and with more threads the connection's own thread
// polls DuckDB's scheduler in a loop meanwhile (perf, 300k rows: ~25 % of
// the client's CPU in pthread_mutex_lock/unlock and Executor::ExecuteTask);
// with one thread that thread runs the pipeline itself (BENCHMARKS.md).
const copyThreads = 1

// copyTable is CopyTable on threads DuckDB threads (0: as set).
func (j *Journal) copyTable(ctx context.Context, conn *sql.Conn, catalog, table, view string, cols []Column, threads int) (n int64, err error) {
	if threads > 0 {
		var was int
		if err := conn.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&was); err != nil {
			return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
		}
		if was != threads {
			if _, err := conn.ExecContext(ctx, fmt.Sprintf(`SET threads = %d`, threads)); err != nil {
				return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
			}
			defer func() {
				if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`SET threads = %d`, was)); rerr != nil && err == nil {
					err = fmt.Errorf("journal %s: copy %s: restore threads: %w", j.name, view, rerr)
				}
			}()
		}
	}
	var sfx [8]byte
	if _, err := rand.Read(sfx[:]); err != nil {
		return 0, err
	}
	fn := "paybatch_copy_" + hex.EncodeToString(sfx[:]) // a table function of this copy only
	vc, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		return 0, err
	}
	src := &copySource{info: []duckdb.ColumnInfo{{Name: "line", T: vc}}, tabs: len(cols) - 1}
	if err := duckdb.RegisterTableUDF(conn, fn, duckdb.ParallelChunkTableFunction{
		BindArguments: func(map[string]any, ...any) (duckdb.ParallelChunkTableSource, error) { return src, nil },
	}); err != nil {
		return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
	}
	// COPY's text format escapes \\ \b \f \n \r \t \v (and writes NULL
	// as \N); splitting on \\ first keeps an escaped backslash apart.
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP MACRO paybatch_copy_text(s) AS
		CASE WHEN s = '\N' THEN NULL WHEN NOT contains(s, '\') THEN s
		ELSE list_aggr(list_transform(string_split(s, '\\'), x -> replace(replace(replace(replace(replace(replace(
			x, '\n', chr(10)), '\t', chr(9)), '\r', chr(13)), '\b', chr(8)), '\f', chr(12)), '\v', chr(11))), 'string_agg', '\') END`); err != nil {
		return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		f := fmt.Sprintf(`f[%d]`, i+1)
		switch c.Type {
		case Varchar:
			sel[i] = `paybatch_copy_text(` + f + `)`
		case Boolean:
			sel[i] = `CASE ` + f + ` WHEN 't' THEN true WHEN 'f' THEN false WHEN '\N' THEN NULL ELSE error('not a boolean: ' || ` + f + `) END`
		default:
			sel[i] = `CAST(nullif(` + f + `, '\N') AS ` + c.Type.DuckDBType() + `)`
		}
	}
	insert := `INSERT INTO ` + quoteIdent(catalog) + "." + quoteIdent(table) + ` SELECT ` + strings.Join(sel, ", ") +
		` FROM (SELECT string_split(line, chr(9)) AS f FROM ` + fn + `())`
	var ierr error
	err = j.copyOut(ctx, view, cols, func(p *batcher, cancel func()) {
		src.p = p
		if _, ierr = conn.ExecContext(ctx, insert); ierr != nil {
			cancel()
		}
	})
	rows := src.rows.Load()
	switch {
	case src.err != nil:
		return rows, fmt.Errorf("journal %s: copy %s %w", j.name, view, src.err)
	case err != nil:
		return rows, err
	case ierr != nil:
		return rows, fmt.Errorf("journal %s: copy %s: %w", j.name, view, ierr)
	case !src.ended.Load():
		return rows, fmt.Errorf("journal %s: copy %s: DuckDB stopped reading after %d rows", j.name, view, rows)
	}
	return rows, nil
}

// copySource is CopyTable's table function: one VARCHAR column, the COPY's
// lines as they arrive, filled by as many of DuckDB's threads as it runs
// (each takes whole batches; the table's row order does not matter).
type copySource struct {
	info  []duckdb.ColumnInfo
	tabs  int // a line has this many tabs
	p     *batcher
	rows  atomic.Int64
	ended atomic.Bool
	mu    sync.Mutex
	err   error // the first line refused
}

// copyLocal is one thread's batch in progress.
type copyLocal struct {
	cur  *batch
	next int // the next line of cur
}

func (s *copySource) ColumnInfos() []duckdb.ColumnInfo     { return s.info }
func (s *copySource) Cardinality() *duckdb.CardinalityInfo { return nil }
func (s *copySource) Init() duckdb.ParallelTableSourceInfo {
	return duckdb.ParallelTableSourceInfo{}
}
func (s *copySource) NewLocalState() any { return &copyLocal{} }

func (s *copySource) FillChunk(ls any, chunk duckdb.DataChunk) error {
	l := ls.(*copyLocal)
	n, max := 0, duckdb.GetDataChunkCapacity()
	for n < max {
		if l.cur == nil || l.next == len(l.cur.ends) {
			if l.cur != nil {
				s.p.free <- l.cur.reset()
				l.cur = nil
			}
			b, ok := <-s.p.full
			if !ok {
				s.ended.Store(true)
				break
			}
			l.cur, l.next = b, 0
		}
		start := 0
		if l.next > 0 {
			start = l.cur.ends[l.next-1]
		}
		line := l.cur.data[start:l.cur.ends[l.next]]
		if k := bytes.Count(line, []byte{'\t'}); k != s.tabs {
			return s.refuse(fmt.Errorf("%d fields, want %d", k+1, s.tabs+1))
		}
		if err := duckdb.SetChunkValue(chunk, 0, n, line); err != nil {
			return s.refuse(err)
		}
		l.next++
		n++
	}
	s.rows.Add(int64(n))
	return chunk.SetSize(n)
}

func (s *copySource) refuse(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf("row %d: %w", s.rows.Load()+1, err)
	}
	return err
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// batcher collects COPY's rows (one per Write) into batches of batchRows.
type batcher struct {
	cur        *batch
	full, free chan *batch
}

type batch struct {
	data []byte
	ends []int
}

func (b *batch) reset() *batch {
	b.data, b.ends = b.data[:0], b.ends[:0]
	return b
}

const batchRows = 2048

func (p *batcher) Write(line []byte) (int, error) {
	if p.cur == nil {
		p.cur = <-p.free
	}
	p.cur.data = append(p.cur.data, bytes.TrimSuffix(line, []byte{'\n'})...)
	p.cur.ends = append(p.cur.ends, len(p.cur.data))
	if len(p.cur.ends) == batchRows {
		p.flush()
	}
	return len(line), nil
}

func (p *batcher) flush() {
	if p.cur != nil && len(p.cur.ends) > 0 {
		p.full <- p.cur
		p.cur = nil
	}
}

// FillReconcile loads what reconcile reads into the in-memory DuckDB
// database journal_db attached on conn (reconcile.LoadJournalFrom): the
// journal's rows (the columns of journal_export reconcile reads,
// ReconcileColumns) and its rejects, each through one COPY (CopyTable),
// behind views named as the DuckDB journal names them.
func (j *Journal) FillReconcile(ctx context.Context, conn *sql.Conn) error {
	for _, t := range []struct {
		view string
		cols []Column
	}{{"journal_export", ReconcileColumns}, {"rejects_export", RejectColumns}} {
		var ddl []string
		for _, c := range t.cols {
			ddl = append(ddl, c.Name+" "+c.Type.DuckDBType())
		}
		table := t.view + "_rows"
		if _, err := conn.ExecContext(ctx, `CREATE TABLE journal_db.`+table+` (`+strings.Join(ddl, ", ")+`);
			CREATE VIEW journal_db.`+t.view+` AS SELECT * FROM journal_db.`+table); err != nil {
			return fmt.Errorf("journal %s: %w", j.name, err)
		}
		if _, err := j.CopyTable(ctx, conn, "journal_db", table, t.view, t.cols); err != nil {
			return err
		}
	}
	return nil
}
