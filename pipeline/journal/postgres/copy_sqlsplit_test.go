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

// CopyTableSQL is copyTableSQL for the external tests.
var CopyTableSQL = (*Journal).copyTableSQL

// copyTableSQL is CopyTable as it was until b113fba, kept for the
// benchmark and the equivalence test to compare against: it copies view's rows into the DuckDB table catalog.table on
// conn, whose columns are cols in that order, and returns how many rows
// it copied (one snapshot). Each row crosses into DuckDB whole, as one
// VARCHAR that a table function hands over straight from the COPY (one
// cgo call a row, where the Appender made one a value), and DuckDB
// splits, unescapes and casts the rows in one INSERT … SELECT, with no
// table in between. The casts are exact: bigint text to BIGINT, never
// through a float; a value that does not cast stops the copy.
func (j *Journal) copyTableSQL(ctx context.Context, conn *sql.Conn, catalog, table, view string, cols []Column, one bool) (int64, error) {
	var sfx [8]byte
	if _, err := rand.Read(sfx[:]); err != nil {
		return 0, err
	}
	fn := "paybatch_copy_" + hex.EncodeToString(sfx[:]) // a table function of this copy only
	vc, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		return 0, err
	}
	src := &lineSource{info: []duckdb.ColumnInfo{{Name: "line", T: vc}}, tabs: len(cols) - 1}
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
	if one {
		restore, err := oneThread(ctx, conn)
		if err != nil {
			return 0, err
		}
		defer restore()
	}
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

// lineSource is CopyTable's table function: one VARCHAR column, the COPY's
// lines as they arrive, filled by as many of DuckDB's threads as it runs
// (each takes whole batches; the table's row order does not matter).
type lineSource struct {
	info  []duckdb.ColumnInfo
	tabs  int // a line has this many tabs
	p     *batcher
	rows  atomic.Int64
	ended atomic.Bool
	mu    sync.Mutex
	err   error // the first line refused
}

// lineLocal is one thread's batch in progress.
type lineLocal struct {
	cur  *batch
	next int // the next line of cur
}

func (s *lineSource) ColumnInfos() []duckdb.ColumnInfo     { return s.info }
func (s *lineSource) Cardinality() *duckdb.CardinalityInfo { return nil }
func (s *lineSource) Init() duckdb.ParallelTableSourceInfo {
	return duckdb.ParallelTableSourceInfo{}
}
func (s *lineSource) NewLocalState() any { return &lineLocal{} }

func (s *lineSource) FillChunk(ls any, chunk duckdb.DataChunk) error {
	l := ls.(*lineLocal)
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

func (s *lineSource) refuse(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf("row %d: %w", s.rows.Load()+1, err)
	}
	return err
}
