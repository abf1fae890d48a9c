package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// duckTable makes an in-memory DuckDB table with cols and an appender on it.
func duckTable(tb testing.TB, cols []postgres.Column) (*sql.DB, func(func(*duckdb.Appender) error)) {
	tb.Helper()
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	var ddl []string
	for _, c := range cols {
		ddl = append(ddl, c.Name+" "+c.Type.DuckDBType())
	}
	if _, err := db.Exec(`CREATE TABLE t (` + strings.Join(ddl, ", ") + `)`); err != nil {
		tb.Fatal(err)
	}
	return db, func(f func(*duckdb.Appender) error) {
		conn, err := db.Conn(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		defer conn.Close()
		err = conn.Raw(func(dc any) error {
			app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "t")
			if err != nil {
				return err
			}
			if err := f(app); err != nil {
				app.Close()
				return err
			}
			return app.Close()
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// Every value crosses exactly, through both paths (CopyInto's Appender
// value by value, CopyTable's whole lines split by DuckDB): text with
// tabs, newlines, backslashes, a literal \N and non-ASCII, NULLs, the
// extremes of bigint, dates and microseconds.
func TestCopyIntoExact(t *testing.T) {
	ctx := context.Background()
	j := open(t, pgtest.URL(t))
	nasty := []string{"tab\there", "new\nline", `back\slash`, "cr\rlf", "é ü 中文 💷", `\N`, "", "  spaced  ", "\\x41\\101", "plain", `N\`, `lit\n`, `two\\`, "\\\n\t"}
	for i, s := range nasty {
		r := row(i, int64(i)*1_000_000_007)
		r.MerchantTxID, r.Problem = s, s
		r.Source.Sheet = s
		switch i {
		case 0:
			r.Amount.Minor = 9223372036854775807
		case 1:
			r.Amount = paybatch.Money{}
		case 2:
			r.Amount.Minor = -9223372036854775808
		}
		if i%2 == 0 { // the others keep NULL sent_at and collection_date
			r.SentAt = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
			r.CollectionDate = time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
		}
		if _, err := j.Ingest(ctx, seq(r), t0); err != nil {
			t.Fatal(err)
		}
	}
	// Compare every column as text, in key order.
	want := pgDump(t, j, `SELECT key, merchant_transaction_id, problem, source_sheet, coalesce(amount_minor::text, 'NULL'), currency,
		coalesce(to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), 'NULL'), coalesce(collection_date::text, 'NULL'),
		replayed::text, source_row::text FROM journal_export ORDER BY key`)
	for _, path := range []string{"appender", "table"} {
		db, appendTo := duckTable(t, postgres.ExportColumns)
		var n int64
		if path == "appender" {
			appendTo(func(app *duckdb.Appender) error {
				var err error
				n, err = j.CopyInto(ctx, "journal_export", postgres.ExportColumns, app)
				return err
			})
		} else {
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n, err = j.CopyTable(ctx, conn, "memory", "t", "journal_export", postgres.ExportColumns)
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if n != int64(len(nasty)) {
			t.Fatalf("%s: copied %d rows", path, n)
		}
		got := duckDump(t, db, `SELECT key, merchant_transaction_id, problem, source_sheet, coalesce(amount_minor::VARCHAR, 'NULL'), currency,
			coalesce(strftime(sent_at, '%Y-%m-%d %H:%M:%S.%f'), 'NULL'), coalesce(collection_date::VARCHAR, 'NULL'), replayed::VARCHAR,
			source_row::VARCHAR FROM t ORDER BY key`)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: DuckDB holds\n%q\nPostgreSQL holds\n%q", path, got, want)
		}
	}
}

func pgDump(t testing.TB, j *postgres.Journal, q string) []string {
	rows, err := j.Pool().Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out
}

func duckDump(t testing.TB, db *sql.DB, q string) []string {
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out
}

// BenchmarkCopyJournalLines: reconcile's load of journal lines from
// PostgreSQL (COPY → DuckDB Appender) against the floor, the same COPY
// read and discarded by the client, in the same run. Rows:
// PAYBATCH_BENCH_PG_ROWS (default 1,000,000).
func BenchmarkCopyJournalLines(b *testing.B) {
	ctx := context.Background()
	n := 1_000_000
	if s := os.Getenv("PAYBATCH_BENCH_PG_ROWS"); s != "" {
		fmt.Sscan(s, &n)
	}
	j := open(b, pgtest.URL(b))
	if _, err := j.Pool().Exec(ctx, `INSERT INTO journal (key, provider, kind, account, merchant_transaction_id, amount_minor, currency,
		body_sha256, state, outcome, provider_status, provider_id, order_id, reason_code, problem, http_status, attempts,
		source_file, source_sheet, source_row, created_at, updated_at, sent_at, method, path, body, terminal, transaction_ref,
		order_ref, mandate, auddis, bank_account, description, default_narrative, replayed, polls, final_at)
		SELECT 'key-' || lpad(i::text, 8, '0'), 'smartretry', 'refund', 'ABC123', 'mtx-' || i, 1000 + i % 5000, 'USD',
			md5(i::text), 'final', 'succeeded', 'APPROVED', 'P' || i, 'O' || i, '', '', 200, 1,
			'refunds.csv', '', i + 1, now(), now(), now(), 'POST', '/refunds', '{}', 'ABC123', 'TX' || i,
			'OR' || i, '', '', '', '', '', false, 1, now()
		FROM generate_series(1, $1) AS i`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := j.Pool().Exec(ctx, `VACUUM ANALYZE journal`); err != nil {
		b.Fatal(err)
	}
	cols := postgres.ReconcileColumns // what FillReconcile copies
	if os.Getenv("PAYBATCH_BENCH_PG_COLUMNS") == "all" {
		cols = postgres.ExportColumns
	}
	b.Run("floor", func(b *testing.B) {
		for range b.N {
			conn, err := j.Pool().Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := conn.Exec(ctx, `SET TimeZone = 'UTC'`); err != nil {
				b.Fatal(err)
			}
			tag, err := conn.Conn().PgConn().CopyTo(ctx, discard{}, postgres.CopyQuery("journal_export", cols))
			conn.Release()
			if err != nil || tag.RowsAffected() != int64(n) {
				b.Fatal(tag, err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
	})
	b.Run("appender", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			_, appendTo := duckTable(b, cols)
			b.StartTimer()
			appendTo(func(app *duckdb.Appender) error {
				got, err := j.CopyInto(ctx, "journal_export", cols, app)
				if err == nil && got != int64(n) {
					err = fmt.Errorf("copied %d rows", got)
				}
				return err
			})
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
	})
	b.Run("table", func(b *testing.B) { // what FillReconcile runs
		for range b.N {
			b.StopTimer()
			db, _ := duckTable(b, cols)
			conn, err := db.Conn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			got, err := j.CopyTable(ctx, conn, "memory", "t", "journal_export", cols)
			if err == nil && got != int64(n) {
				err = fmt.Errorf("copied %d rows", got)
			}
			conn.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
	})
	// Side by side: the same lines loaded from a DuckDB journal file of the
	// same rows, the way reconcile reads one (ATTACHed read-only, its
	// journal_export view read into a table).
	b.Run("duckdb_journal", func(b *testing.B) {
		path := duckJournal(b, n)
		var sel []string
		for _, c := range cols {
			sel = append(sel, c.Name)
		}
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			db, _ := duckTable(b, cols)
			b.StartTimer()
			if _, err := db.Exec(`ATTACH '` + path + `' AS journal_db (READ_ONLY)`); err != nil {
				b.Fatal(err)
			}
			res, err := db.Exec(`INSERT INTO t SELECT ` + strings.Join(sel, ", ") + ` FROM journal_db.journal_export`)
			if err != nil {
				b.Fatal(err)
			}
			if got, _ := res.RowsAffected(); got != int64(n) {
				b.Fatalf("copied %d rows", got)
			}
			if _, err := db.Exec(`DETACH journal_db`); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
	})
}

// duckJournal is a DuckDB journal file holding n rows shaped as the
// benchmark's PostgreSQL rows.
func duckJournal(b *testing.B, n int) string {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "journal.duckdb")
	j, err := journal.OpenDuckDB(ctx, path, journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	if _, err := j.SQL().ExecContext(ctx, `INSERT INTO journal (key, provider, kind, account, merchant_transaction_id, amount_minor, currency,
		body_sha256, state, outcome, provider_status, provider_id, order_id, reason_code, problem, http_status, attempts,
		source_file, source_sheet, source_row, created_at, updated_at, sent_at, method, path, body, terminal, transaction_ref,
		order_ref, mandate, auddis, bank_account, description, default_narrative, replayed, polls, final_at)
		SELECT 'key-' || lpad(i::VARCHAR, 8, '0'), 'smartretry', 'refund', 'ABC123', 'mtx-' || i, 1000 + i % 5000, 'USD',
			md5(i::VARCHAR), 'final', 'succeeded', 'APPROVED', 'P' || i, 'O' || i, '', '', 200, 1,
			'refunds.csv', '', i + 1, now(), now(), now(), 'POST', '/refunds', '{}', 'ABC123', 'TX' || i,
			'OR' || i, '', '', '', '', '', false, 1, now()
		FROM range(1, $1 + 1) AS r(i)`, n); err != nil {
		b.Fatal(err)
	}
	return path
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
