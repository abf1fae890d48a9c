package postgres

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// CopyToDuckDB loads every row of view (journal_export or rejects_export)
// into the DuckDB table table (on conn), whose columns are cols in that
// order, and returns how many rows it loaded. The rows leave PostgreSQL by
// one COPY … TO STDOUT in CSV (one snapshot), spooled to a private
// temporary file in dir (os.TempDir() when empty) and read by DuckDB's
// own CSV reader with every column's type given, then the file is removed.
// Why not the Appender: at 13 columns it costs a cgo call per string
// value, 3–5× the COPY itself; DuckDB's reader costs a fraction of it
// (BENCHMARKS.md). Exact: integers are read as BIGINT/INTEGER, text as
// VARCHAR, and NULL stays distinct from "" (PostgreSQL quotes an empty
// string, allow_quoted_nulls=false keeps it empty).
func (j *Journal) CopyToDuckDB(ctx context.Context, conn *sql.Conn, view string, cols []Column, table, dir string) (int64, error) {
	if view != "journal_export" && view != "rejects_export" {
		return 0, fmt.Errorf("journal %s: copy: %s is not an exported view", j.name, view)
	}
	// A FIFO: DuckDB's CSV reader reads while PostgreSQL's COPY writes.
	tmp, err := os.MkdirTemp(dir, "paybatch-journal-*")
	if err != nil {
		return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
	}
	defer os.RemoveAll(tmp)
	fifo := filepath.Join(tmp, "lines.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return 0, fmt.Errorf("journal %s: copy %s: %w", j.name, view, err)
	}
	pc, err := j.pool.Acquire(ctx)
	if err != nil {
		return 0, j.wrap("copy", err)
	}
	defer pc.Release()
	if _, err := pc.Exec(ctx, `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'`); err != nil {
		return 0, j.wrap("copy", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type copied struct {
		rows int64
		err  error
	}
	sent := make(chan copied, 1)
	go func() {
		// Opening a FIFO for writing waits for its reader (DuckDB).
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			sent <- copied{err: err}
			return
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		tag, err := pc.Conn().PgConn().CopyTo(cctx, bw, CopyCSVQuery(view, cols))
		if err == nil {
			err = bw.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		sent <- copied{tag.RowsAffected(), err}
	}()
	f := struct{ Name func() string }{func() string { return fifo }}
	var spec []string
	for _, c := range cols {
		spec = append(spec, quoteLiteral(c.Name)+": "+quoteLiteral(c.Type.DuckDBType()))
	}
	res, err := conn.ExecContext(ctx, `INSERT INTO `+table+` SELECT * FROM read_csv(`+quoteLiteral(filepath.ToSlash(f.Name()))+`,
		columns = {`+strings.Join(spec, ", ")+`}, header = false, delim = ',', quote = '"', escape = '"',
		allow_quoted_nulls = false, auto_detect = false)`)
	if err != nil {
		cancel()
		// Unblock a writer still waiting for a reader.
		if r, oerr := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); oerr == nil {
			r.Close()
		}
		<-sent
		return 0, fmt.Errorf("journal %s: copy %s into DuckDB: %w", j.name, view, err)
	}
	c := <-sent
	if c.err != nil {
		return 0, j.wrap("copy "+view, c.err)
	}
	n, _ := res.RowsAffected()
	if n != c.rows {
		return n, fmt.Errorf("journal %s: copy %s: PostgreSQL sent %d rows, DuckDB read %d", j.name, view, c.rows, n)
	}
	return n, nil
}

// CopyCSVQuery is the COPY statement CopyToDuckDB runs (the benchmark's
// floor runs it too, discarding the rows).
func CopyCSVQuery(view string, cols []Column) string {
	return strings.TrimSuffix(CopyQuery(view, cols), " TO STDOUT") + " TO STDOUT WITH (FORMAT csv)"
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
