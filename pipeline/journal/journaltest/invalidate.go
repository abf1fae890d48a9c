package journaltest

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// Invalidate has DuckDB invalidate the database db is opened on, as any
// internal error of DuckDB does: every later statement on it, on any
// connection, then fails with "FATAL Error: Failed: database has been
// invalidated because of a previous fatal error" until the file is opened
// again. It repeats a query DuckDB 1.5.5 answers now and then with
// "INTERNAL Error: Attempted to access index 0 within vector of size 0" —
// count(*) OVER () over the rows a semi join lets through (the query
// journal.IDsFromOtherFiles no longer asks) — on temporary tables of its
// own, on two DuckDB threads (the database's setting), until DuckDB fails
// it: within a few hundred calls here. The test is
// skipped when every call is answered (a DuckDB without that bug).
func Invalidate(tb testing.TB, db *sql.DB) int {
	tb.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		`SET threads = 2`, // the failure is a race between DuckDB's threads
		`CREATE OR REPLACE TEMP TABLE invalidate_rows (id VARCHAR, file VARCHAR, n INTEGER)`,
		`INSERT INTO invalidate_rows VALUES ('a0', 'x', 0), ('a1', 'x', 1), ('a2', 'x', 2)`,
		`INSERT INTO invalidate_rows VALUES ('a3', 'x', 3), ('a4', 'y', 4), ('a5', 'y', 5)`,
		`CREATE OR REPLACE TEMP TABLE invalidate_ids AS SELECT * FROM (VALUES ('a4'), ('a1'), ('a2')) v(id)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
	const calls = 50_000
	for k := range calls {
		rs, err := conn.QueryContext(ctx, `SELECT count(*) OVER (), id FROM temp.invalidate_rows
			WHERE file <> 'y' AND id IN (SELECT id FROM temp.invalidate_ids)`)
		if err == nil {
			for rs.Next() {
			}
			err = rs.Err()
			rs.Close()
		}
		if err != nil {
			if !strings.Contains(err.Error(), "INTERNAL Error") {
				tb.Fatalf("call %d: %v", k+1, err)
			}
			return k + 1
		}
	}
	tb.Skipf("DuckDB answered the query %d times: it no longer fails it, and nothing here can invalidate a database", calls)
	return 0
}
