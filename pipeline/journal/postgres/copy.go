package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// Copying out: a query's rows leave PostgreSQL by COPY … TO STDOUT (text
// format, one CopyData message per row) and enter DuckDB through an
// Appender, field by field converted to the target column's type — never
// row by row through database/sql, and never through a float.

// Type is a DuckDB column type CopyInto can fill.
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

// RejectColumns are rejects_export's columns, in order.
var RejectColumns = []Column{{"source_file", Varchar}, {"source_sheet", Varchar}, {"source_row", Integer},
	{"column_name", Varchar}, {"value", Varchar}, {"reason", Varchar}, {"merchant_transaction_id", Varchar}}

// CopyInto appends every row of view (journal_export or rejects_export)
// to app, whose table has cols' columns in that order, and returns how
// many rows it copied. The rows are read in one snapshot.
func (j *Journal) CopyInto(ctx context.Context, view string, cols []Column, app *duckdb.Appender) (int64, error) {
	return copyInto(ctx, j, view, cols, app)
}

// CopyQuery is the COPY statement CopyInto runs (the benchmark's floor
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

func copyInto(ctx context.Context, j *Journal, view string, cols []Column, app *duckdb.Appender) (int64, error) {
	if view != "journal_export" && view != "rejects_export" {
		return 0, fmt.Errorf("journal %s: copy: %s is not an exported view", j.name, view)
	}
	conn, err := j.pool.Acquire(ctx)
	if err != nil {
		return 0, j.wrap("copy", err)
	}
	defer conn.Release()
	// Timestamps in UTC, ISO.
	if _, err := conn.Exec(ctx, `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'`); err != nil {
		return 0, j.wrap("copy", err)
	}
	// The connection's reader batches rows; the appender parses and
	// appends them on another goroutine, so the network read and the
	// appends overlap.
	w := &rowAppender{app: app, cols: cols, fields: make([][]byte, len(cols)), vals: make([]driver.Value, len(cols))}
	p := &batcher{full: make(chan *batch, 2), free: make(chan *batch, 3)}
	for range 3 {
		p.free <- &batch{}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range p.full {
			if w.err == nil {
				for i := range b.ends {
					start := 0
					if i > 0 {
						start = b.ends[i-1]
					}
					if w.err = w.append(b.data[start:b.ends[i]]); w.err != nil {
						cancel()
						break
					}
					w.rows++
				}
			}
			b.data, b.ends = b.data[:0], b.ends[:0]
			p.free <- b
		}
	}()
	_, err = conn.Conn().PgConn().CopyTo(cctx, p, CopyQuery(view, cols))
	if err == nil {
		p.flush()
	}
	close(p.full)
	<-done
	if w.err != nil {
		return w.rows, fmt.Errorf("journal %s: copy %s row %d: %w", j.name, view, w.rows+1, w.err)
	}
	if err != nil {
		return w.rows, j.wrap("copy "+view, err)
	}
	return w.rows, nil
}

// batcher collects COPY's rows (one per Write) into batches of batchRows.
type batcher struct {
	cur        *batch
	full, free chan *batch
}

type batch struct {
	data []byte
	ends []int
}

const batchRows = 2048

func (p *batcher) Write(line []byte) (int, error) {
	if p.cur == nil {
		p.cur = <-p.free
	}
	p.cur.data = append(p.cur.data, line...)
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

// rowAppender parses COPY's text rows and appends them.
type rowAppender struct {
	app    *duckdb.Appender
	cols   []Column
	fields [][]byte
	vals   []driver.Value
	rows   int64
	err    error
}

func (w *rowAppender) append(line []byte) error {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	n := 0
	for {
		i := bytes.IndexByte(line, '\t')
		if n == len(w.fields) {
			return fmt.Errorf("more than %d fields", len(w.fields))
		}
		if i < 0 {
			w.fields[n] = line
			n++
			break
		}
		w.fields[n] = line[:i]
		n++
		line = line[i+1:]
	}
	if n != len(w.fields) {
		return fmt.Errorf("%d fields, want %d", n, len(w.fields))
	}
	for i, f := range w.fields {
		v, err := w.value(w.cols[i].Type, f)
		if err != nil {
			return fmt.Errorf("column %s: %q: %w", w.cols[i].Name, f, err)
		}
		w.vals[i] = v
	}
	return w.app.AppendRow(w.vals...)
}

func (w *rowAppender) value(t Type, f []byte) (driver.Value, error) {
	if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
		return nil, nil
	}
	switch t {
	case Varchar:
		if bytes.IndexByte(f, '\\') >= 0 {
			return unescape(f)
		}
		// As bytes: the Appender copies them into DuckDB's vector before
		// AppendRow returns (a string would be copied to bytes first).
		return f, nil
	case BigInt:
		return strconv.ParseInt(string(f), 10, 64)
	case Integer:
		v, err := strconv.ParseInt(string(f), 10, 32)
		return int32(v), err
	case Boolean:
		switch string(f) {
		case "t":
			return true, nil
		case "f":
			return false, nil
		}
		return nil, fmt.Errorf("not a boolean")
	case Date:
		return time.Parse(time.DateOnly, string(f))
	case Timestamp:
		return time.Parse("2006-01-02 15:04:05.999999", string(f))
	}
	return nil, fmt.Errorf("unknown column type %d", t)
}

// unescape undoes COPY's text escapes (\\, \t, \n, \r, \b, \f, \v, octal
// \NNN and hex \xHH).
func unescape(f []byte) (string, error) {
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(f) {
			return "", fmt.Errorf("trailing backslash")
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
	return string(out), nil
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
// journal's rows (every column of journal_export, so that whatever
// reconcile's SQL reads of the view is there) and its rejects, each
// through one COPY into an Appender, behind views named as the DuckDB
// journal names them.
func (j *Journal) FillReconcile(ctx context.Context, conn *sql.Conn) error {
	for _, t := range []struct {
		view string
		cols []Column
	}{{"journal_export", ExportColumns}, {"rejects_export", RejectColumns}} {
		var ddl []string
		for _, c := range t.cols {
			ddl = append(ddl, c.Name+" "+c.Type.DuckDBType())
		}
		table := t.view + "_rows"
		if _, err := conn.ExecContext(ctx, `CREATE TABLE journal_db.`+table+` (`+strings.Join(ddl, ", ")+`);
			CREATE VIEW journal_db.`+t.view+` AS SELECT * FROM journal_db.`+table); err != nil {
			return fmt.Errorf("journal %s: %w", j.name, err)
		}
		err := conn.Raw(func(dc any) error {
			app, err := duckdb.NewAppender(dc.(driver.Conn), "journal_db", "", table)
			if err != nil {
				return err
			}
			if _, err := j.CopyInto(ctx, t.view, t.cols, app); err != nil {
				app.Close()
				return err
			}
			return app.Close()
		})
		if err != nil {
			return fmt.Errorf("journal %s: %w", j.name, err)
		}
	}
	return nil
}
