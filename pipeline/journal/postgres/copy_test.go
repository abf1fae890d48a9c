package postgres_test

import (
	"context"
	"database/sql"
	"syscall"

	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the duckdb driver

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// duckTable makes an in-memory DuckDB database with an empty table t of
// cols.
func duckTable(tb testing.TB, cols []postgres.Column) *sql.DB {
	tb.Helper()
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if set := os.Getenv("PAYBATCH_BENCH_DUCKDB_SET"); set != "" { // e.g. "SET threads = 1"
		if _, err := db.Exec(set); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.Exec(`CREATE TABLE t (` + ddl(cols) + `)`); err != nil {
		tb.Fatal(err)
	}
	return db
}

func ddl(cols []postgres.Column) string {
	var d []string
	for _, c := range cols {
		d = append(d, c.Name+" "+c.Type.DuckDBType())
	}
	return strings.Join(d, ", ")
}

// copyTable runs CopyTable of view into db's table on a connection of
// its own.
func copyTable(tb testing.TB, j *postgres.Journal, db *sql.DB, table, view string, cols []postgres.Column) (int64, error) {
	tb.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	return j.CopyTable(ctx, conn, "memory", table, view, cols)
}

// nasty is text COPY must carry exactly: its escapes (tab, newline, CR,
// backslash, \b \f \v), what looks like an escape or NULL but is text, a
// control byte COPY sends raw, non-ASCII, blanks.
var nasty = []string{"tab\there", "new\nline", `back\slash`, "cr\rlf", "é ü 中文 💷", `\N`, "", "  spaced  ",
	"\\x41\\101", "plain", `N\`, `lit\n`, `two\\`, "\\\n\t", "\b\f\v", "ctl\x01\x7f", "a twelve ch", "exactly 12 b", "thirteen byte"}

// nastyJournal ingests one row per nasty text (in the text columns),
// with bigint's extremes, a void (no amount), NULL and non-NULL dates
// and timestamps.
func nastyJournal(t *testing.T) *postgres.Journal {
	ctx := context.Background()
	j := open(t, pgtest.URL(t))
	for i, s := range nasty {
		r := row(i, int64(i)*1_000_000_007)
		r.MerchantTxID, r.Problem, r.ReasonCode, r.ProviderStatus = s, s, s, s
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
			r.CollectionDate = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
		}
		if i%3 == 0 {
			r.SentAt = time.Date(1999, 12, 31, 23, 59, 59, 100000000, time.UTC) // fraction ".1"
		}
		if _, err := j.Ingest(ctx, seq(r), t0); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

// Every value crosses exactly: text with tabs, newlines, backslashes, a
// literal \N and non-ASCII, NULLs, the extremes of bigint, dates and
// microseconds — compared as text with what PostgreSQL holds.
func TestCopyTableExact(t *testing.T) {
	j := nastyJournal(t)
	want := pgDump(t, j, `SELECT key, merchant_transaction_id, problem, reason_code, provider_status, source_sheet,
		coalesce(amount_minor::text, 'NULL'), currency,
		coalesce(to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), 'NULL'), coalesce(collection_date::text, 'NULL'),
		replayed::text, source_row::text FROM journal_export ORDER BY key`)
	db := duckTable(t, postgres.ExportColumns)
	n, err := copyTable(t, j, db, "t", "journal_export", postgres.ExportColumns)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(nasty)) {
		t.Fatalf("copied %d rows", n)
	}
	got := duckDump(t, db, `SELECT key, merchant_transaction_id, problem, reason_code, provider_status, source_sheet,
		coalesce(amount_minor::VARCHAR, 'NULL'), currency,
		coalesce(strftime(sent_at, '%Y-%m-%d %H:%M:%S.%f'), 'NULL'), coalesce(collection_date::VARCHAR, 'NULL'), replayed::VARCHAR,
		source_row::VARCHAR FROM t ORDER BY key`)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("DuckDB holds\n%q\nPostgreSQL holds\n%q", got, want)
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
// PostgreSQL against the floor (the same COPY read and discarded by the
// client), in the same run: table is CopyTable, what FillReconcile runs;
// duckdb_journal the same lines loaded from a DuckDB journal file.
// cpu-s/op is this process's CPU (PostgreSQL's is not in it). Rows:
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
		cpuMetric(b)
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
	b.Run("table", func(b *testing.B) { // what FillReconcile runs
		cpuMetric(b)
		for range b.N {
			b.StopTimer()
			db := duckTable(b, cols)
			b.StartTimer()
			got, err := copyTable(b, j, db, "t", "journal_export", cols)
			if err == nil && got != int64(n) {
				err = fmt.Errorf("copied %d rows", got)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
	})
	// Side by side: the same copy on DuckDB's default threads (one a core),
	// as CopyTable ran before 2026-12-04 02:00.
	b.Run("table_default_threads", func(b *testing.B) {
		cpuMetric(b)
		for range b.N {
			b.StopTimer()
			db := duckTable(b, cols)
			conn, err := db.Conn(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			got, err := j.CopyTableThreads(ctx, conn, "memory", "t", "journal_export", cols, 0)
			conn.Close()
			if err == nil && got != int64(n) {
				err = fmt.Errorf("copied %d rows", got)
			}
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
		cpuMetric(b)
		for range b.N {
			b.StopTimer()
			db := duckTable(b, cols)
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

// cpuMetric reports this process's CPU time (user and system, every
// thread: Go's and DuckDB's) per operation, from when it is called to the
// end of the benchmark: what the client spends beside PostgreSQL's work.
func cpuMetric(b *testing.B) {
	start := cpuTime()
	b.Cleanup(func() {
		b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
	})
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// reconcile's load from PostgreSQL (FillReconcile, on a DuckDB set to
// several threads) holds, in every column reconcile reads, exactly what
// the DuckDB journal file of the same rows exports: the nasty texts,
// bigint's extremes, NULL and non-NULL dates, final states with the
// provider's amount and date, microsecond timestamps. And the copy leaves
// DuckDB's threads setting as it found it.
func TestFillReconcileSameAsDuckDBJournal(t *testing.T) {
	ctx := context.Background()
	pg := open(t, pgtest.URL(t))
	path := filepath.Join(t.TempDir(), "journal.duckdb")
	dj, err := journal.OpenDuckDB(ctx, path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows := func() []*journal.Row {
		var rs []*journal.Row
		for i, s := range nasty {
			r := row(i, int64(i)*1_000_000_007)
			r.MerchantTxID, r.Source.Sheet, r.Source.File = s, s, s
			switch i {
			case 0:
				r.Amount.Minor = 9223372036854775807
			case 1:
				r.Amount = paybatch.Money{}
			case 2:
				r.Amount.Minor = -9223372036854775808
			}
			if i%2 == 0 {
				r.CollectionDate = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
			}
			rs = append(rs, r)
		}
		return rs
	}
	for _, j := range []journal.Journal{pg, dj} {
		rs := rows()
		if _, err := j.Ingest(ctx, seq(rs...), t0); err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			s := nasty[i]
			r.State, r.ProviderStatus, r.ReasonCode, r.Problem, r.ProviderID = paybatch.StateSending, s, s, s, s
			r.Attempts++ // an intent claims the row at the attempt count read (claim)
			r.UpdatedAt = t0.Add(time.Duration(i)*time.Second + 123456*time.Microsecond)
			r.SentAt = r.UpdatedAt
			if err := j.Save(r); err != nil {
				t.Fatal(err)
			}
			switch i % 4 {
			case 0:
				r.State, r.Outcome, r.HTTPStatus = paybatch.StateFinal, paybatch.OutcomeSucceeded, 200
			case 1:
				r.State, r.Outcome, r.HTTPStatus = paybatch.StateFinal, paybatch.OutcomeFailed, 200
			case 2:
				r.State, r.HTTPStatus = paybatch.StateDeclined, 402
			case 3:
				continue // still sending
			}
			amt := int64(i) - 9223372036854775807
			r.ProviderAmount = &amt
			r.ProviderDate = time.Date(2026, 12, 31-i, 0, 0, 0, 0, time.UTC)
			r.UpdatedAt = r.UpdatedAt.Add(time.Microsecond)
			if err := j.Save(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := dj.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false&threads=3")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH ':memory:' AS journal_db; ATTACH '`+path+`' AS file_db (READ_ONLY)`); err != nil {
		t.Fatal(err)
	}
	if err := pg.FillReconcile(ctx, conn); err != nil {
		t.Fatal(err)
	}
	var threads int
	if err := conn.QueryRowContext(ctx, `SELECT current_setting('threads')`).Scan(&threads); err != nil || threads != 3 {
		t.Errorf("threads after the copy: %d %v, want 3 as set", threads, err)
	}
	var sel []string
	for _, c := range postgres.ReconcileColumns {
		sel = append(sel, fmt.Sprintf(`coalesce(%s::VARCHAR, '<NULL>')`, c.Name))
	}
	dump := func(catalog string) []string {
		return duckDump(t, db, `SELECT `+strings.Join(sel, ", ")+` FROM `+catalog+`.journal_export ORDER BY key`)
	}
	got, want := dump("journal_db"), dump("file_db")
	if len(got) != len(nasty) {
		t.Fatalf("PostgreSQL load holds %d rows, want %d", len(got), len(nasty))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\nfrom PostgreSQL %q\nfrom DuckDB     %q", i, got[i], want[i])
		}
	}
	if !strings.Contains(strings.Join(got, "\n"), "-9223372036854775808") || !strings.Contains(strings.Join(got, "\n"), "2024-02-29") {
		t.Errorf("the extremes did not reach the comparison:\n%s", strings.Join(got, "\n"))
	}
}
