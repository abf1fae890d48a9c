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
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Copying out: a query's rows leave PostgreSQL by COPY … TO STDOUT (text
// format, one CopyData message per row) and enter DuckDB through a table
// function that fills typed vectors, field by field converted to the
// target column's type — never row by row through database/sql, never a
// value at a time through an Appender, and never through a float.

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
// it copied (one snapshot). A DuckDB table function (copySource) fills
// typed vectors straight from the COPY's text lines — split, unescaped
// and parsed in Go, exactly (bigint text to int64, never through a
// float) — and one INSERT … SELECT * reads it: no VARCHAR line for
// DuckDB to split and cast, no Appender call per value. A value that does
// not parse stops the copy, naming its row, column and value. The
// database runs one thread meanwhile (oneThread).
func (j *Journal) CopyTable(ctx context.Context, conn *sql.Conn, catalog, table, view string, cols []Column) (int64, error) {
	src, err := newCopySource(cols)
	if err != nil {
		return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
	}
	fn, err := src.register(conn)
	if err != nil {
		return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
	}
	insert := `INSERT INTO ` + quoteIdent(catalog) + "." + quoteIdent(table) + ` SELECT * FROM ` + fn + `()`
	restore, err := oneThread(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
	}
	defer restore()
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

// oneThread sets conn's database to run one thread until restore: with
// more, one of DuckDB's worker threads runs the copy's single-threaded
// INSERT while the connection's own thread polls for work in a loop, a
// core spent waiting (measured at 300k rows: 1.1–1.4 s of CPU against
// 0.8 s with one thread); with one, the connection's thread runs the
// INSERT, and the table function's callbacks run on the Go thread that
// called it.
func oneThread(ctx context.Context, conn *sql.Conn) (restore func(), err error) {
	var threads int64
	if err := conn.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&threads); err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SET threads = 1`); err != nil {
		return nil, err
	}
	return func() {
		conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`SET threads = %d`, threads))
	}, nil
}

// copySource is CopyTable's table function: cols' typed columns, filled
// from the COPY's lines as they arrive, in their order, on one thread.
type copySource struct {
	info  []duckdb.ColumnInfo
	cols  []Column
	p     *batcher
	rows  atomic.Int64
	ended atomic.Bool
	mu    sync.Mutex
	err   error // the first line refused
}

func newCopySource(cols []Column) (*copySource, error) {
	s := &copySource{cols: cols}
	for _, c := range cols {
		t, err := duckdb.NewTypeInfo([...]duckdb.Type{duckdb.TYPE_VARCHAR, duckdb.TYPE_BIGINT, duckdb.TYPE_INTEGER,
			duckdb.TYPE_BOOLEAN, duckdb.TYPE_DATE, duckdb.TYPE_TIMESTAMP}[c.Type])
		if err != nil {
			return nil, err
		}
		s.info = append(s.info, duckdb.ColumnInfo{Name: c.Name, T: t})
	}
	return s, nil
}

// register makes s a table function of conn, under a name of this copy
// only, and returns the name.
func (s *copySource) register(conn *sql.Conn) (string, error) {
	var sfx [8]byte
	if _, err := rand.Read(sfx[:]); err != nil {
		return "", err
	}
	fn := "paybatch_copy_" + hex.EncodeToString(sfx[:])
	return fn, duckdb.RegisterTableUDF(conn, fn, duckdb.ParallelChunkTableFunction{
		BindArguments: func(map[string]any, ...any) (duckdb.ParallelChunkTableSource, error) { return s, nil },
	})
}

// copyLocal is the batch in progress.
type copyLocal struct {
	cur    *batch
	next   int      // the next line of cur
	fields [][]byte // the line's fields
	buf    []byte   // an unescaped field
}

func (s *copySource) ColumnInfos() []duckdb.ColumnInfo     { return s.info }
func (s *copySource) Cardinality() *duckdb.CardinalityInfo { return nil }
func (s *copySource) Init() duckdb.ParallelTableSourceInfo {
	return duckdb.ParallelTableSourceInfo{MaxThreads: 1}
}
func (s *copySource) NewLocalState() any { return &copyLocal{fields: make([][]byte, len(s.cols))} }

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
		if err := s.fill(l, chunk, n, l.cur.data[start:l.cur.ends[l.next]]); err != nil {
			return s.refuse(int64(n), err)
		}
		l.next++
		n++
	}
	s.rows.Add(int64(n))
	return chunk.SetSize(n)
}

// fill sets row n of chunk from one COPY text line.
func (s *copySource) fill(l *copyLocal, chunk duckdb.DataChunk, n int, line []byte) error {
	k := 0
	for {
		i := bytes.IndexByte(line, '\t')
		if k == len(l.fields) {
			return fmt.Errorf("more than %d fields", len(l.fields))
		}
		if i < 0 {
			l.fields[k] = line
			k++
			break
		}
		l.fields[k] = line[:i]
		k++
		line = line[i+1:]
	}
	if k != len(l.fields) {
		return fmt.Errorf("%d fields, want %d", k, len(l.fields))
	}
	for c, f := range l.fields {
		if err := l.set(chunk, c, n, s.cols[c].Type, f); err != nil {
			return fmt.Errorf("column %s: %q: %w", s.cols[c].Name, f, err)
		}
	}
	return nil
}

// set parses f, a field of COPY's text format, as t into row n of column
// c: \N is NULL, text is unescaped, numbers are exact.
func (l *copyLocal) set(chunk duckdb.DataChunk, c, n int, t Type, f []byte) error {
	if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
		return chunk.SetValue(c, n, nil)
	}
	switch t {
	case Varchar:
		if bytes.IndexByte(f, '\\') >= 0 {
			var err error
			if l.buf, err = unescape(l.buf[:0], f); err != nil {
				return err
			}
			f = l.buf
		}
		return duckdb.SetChunkValue(chunk, c, n, f) // DuckDB copies the bytes
	case BigInt:
		v, err := parseInt(f, 64)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(chunk, c, n, v)
	case Integer:
		v, err := parseInt(f, 32)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(chunk, c, n, int32(v))
	case Boolean:
		switch string(f) {
		case "t":
			return duckdb.SetChunkValue(chunk, c, n, true)
		case "f":
			return duckdb.SetChunkValue(chunk, c, n, false)
		}
		return fmt.Errorf("not a boolean")
	case Date, Timestamp:
		v, err := parseTime(f, t == Date)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(chunk, c, n, v)
	}
	return fmt.Errorf("unknown column type %d", t)
}

func (s *copySource) refuse(n int64, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf("row %d: %w", s.rows.Load()+n+1, err)
	}
	return err
}

// parseInt reads a decimal integer of bits bits, exactly: an optional
// minus sign and digits, nothing else.
func parseInt(f []byte, bits uint) (int64, error) {
	neg := len(f) > 0 && f[0] == '-'
	d := f
	if neg {
		d = f[1:]
	}
	if len(d) == 0 {
		return 0, fmt.Errorf("not an integer")
	}
	limit := uint64(1) << (bits - 1) // |min|; max is limit-1
	var v uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not an integer")
		}
		if v > (limit-uint64(c-'0'))/10 {
			return 0, fmt.Errorf("out of range for %d-bit integer", bits)
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		return -int64(v-1) - 1, nil // -limit fits
	}
	if v == limit {
		return 0, fmt.Errorf("out of range for %d-bit integer", bits)
	}
	return int64(v), nil
}

// parseTime reads PostgreSQL's ISO output (DateStyle ISO, time zone UTC):
// YYYY-MM-DD, or with date false YYYY-MM-DD HH:MM:SS and up to six
// digits of fraction. Anything else (BC, five-digit years, infinity) is
// refused, never guessed.
func parseTime(f []byte, date bool) (time.Time, error) {
	bad := func() (time.Time, error) {
		if date {
			return time.Time{}, fmt.Errorf("not a date (YYYY-MM-DD)")
		}
		return time.Time{}, fmt.Errorf("not a timestamp (YYYY-MM-DD HH:MM:SS.ffffff)")
	}
	num := func(b []byte) int {
		v := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	if len(f) < 10 || f[4] != '-' || f[7] != '-' || (date && len(f) != 10) {
		return bad()
	}
	y, mo, d := num(f[:4]), num(f[5:7]), num(f[8:10])
	hh, mi, ss, ns := 0, 0, 0, 0
	if !date {
		if len(f) < 19 || f[10] != ' ' || f[13] != ':' || f[16] != ':' {
			return bad()
		}
		hh, mi, ss = num(f[11:13]), num(f[14:16]), num(f[17:19])
		if frac := f[19:]; len(frac) > 0 {
			if len(frac) < 2 || len(frac) > 7 || frac[0] != '.' {
				return bad()
			}
			if ns = num(frac[1:]); ns < 0 {
				return bad()
			}
			for range 10 - len(frac) { // to nanoseconds
				ns *= 10
			}
		}
	}
	if y < 1 || mo < 1 || mo > 12 || d < 1 || hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59 {
		return bad()
	}
	t := time.Date(y, time.Month(mo), d, hh, mi, ss, ns, time.UTC)
	if t.Day() != d { // 2026-02-30 would normalise to March
		return bad()
	}
	return t, nil
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

// unescape undoes COPY's text escapes (\\, \t, \n, \r, \b, \f, \v, octal
// \NNN and hex \xHH), appending the text to out.
func unescape(out, f []byte) ([]byte, error) {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(f) {
			return out, fmt.Errorf("trailing backslash")
		}
		switch c = f[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			v, k := 0, 0
			for ; k < 2 && i+1 < len(f) && isHex(f[i+1]); k++ {
				i++
				v = v*16 + hexVal(f[i])
			}
			if k == 0 {
				out = append(out, 'x')
			} else {
				out = append(out, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 1; k < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; k++ {
				i++
				v = v*8 + int(f[i]-'0')
			}
			out = append(out, byte(v))
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
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
