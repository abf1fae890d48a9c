package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/paybatch/paybatch"
)

// BenchmarkCommitGroup measures the CPU of one group commit at a paced
// rate, in the shape a contracted 300/s submit commits (≈ 10 groups a
// second of ≈ 30 intents and ≈ 30 answers; PB_HALF sets the 30), through
// the journal's own committer on a journal of 3,000 rows; beside it the
// floors: the same rows appended and committed to a plain table of a bare
// DuckDB database (with DuckDB's optimizer, and with it disabled on the
// appender's connection: DuckDB 1.5's appender Flush is an INSERT query
// parsed, bound, optimized and planned anew each time), to a table of 6 of
// the 20 columns, and one fsync'd 4 KiB write.
// cpu-µs/group and cpu-µs/row are the process's user+system CPU
// (getrusage); append- and flush-µs the committing thread's. Figures in
// BENCHMARKS.md #19 (session 14).
func BenchmarkCommitGroup(b *testing.B) {
	const rows = 3000
	half := 30
	if v := os.Getenv("PB_HALF"); v != "" {
		fmt.Sscan(v, &half)
	}
	ctx := context.Background()
	usd := paybatch.MustCurrency("USD")
	now := time.Now().UTC()
	mk := func(i int) *Row {
		return &Row{Key: fmt.Sprintf("smartretry:refund:%032x", i), Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
			MerchantTxID: fmt.Sprintf("R-%06d", i), Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i)}, BodySHA256: "h",
			State: paybatch.StatePending, Source: paybatch.Source{File: "refunds.csv", Row: i + 2}, CreatedAt: now, UpdatedAt: now}
	}
	// group returns the g'th group: intents of rows 30g.. and answers of
	// the rows of the group before.
	group := func(g int) []Change {
		out := make([]Change, 0, 2*half)
		for k := range half {
			r := mk((g*half + k) % rows)
			r.State, r.Attempts, r.SentAt, r.UpdatedAt = paybatch.StateSending, 1, now, now
			out = append(out, Change{Row: r, Save: true})
		}
		for k := range half {
			r := mk(((g-1)*half + k + rows) % rows)
			r.State, r.Outcome, r.Attempts, r.SentAt, r.UpdatedAt = paybatch.StateAccepted, paybatch.OutcomePending, 1, now, now
			r.ProviderStatus, r.ProviderID, r.HTTPStatus = "PROCESSING", fmt.Sprintf("sr_%012d", g*half+k), 200
			out = append(out, Change{Row: r})
		}
		return out
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	run := func(b *testing.B, commit func([]Change) error) {
		groups := make([][]Change, 64)
		for i := range groups {
			groups[i] = group(i + 1)
		}
		c0, i := cpu(), 0
		for b.Loop() {
			if err := commit(groups[i%len(groups)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		us := float64((cpu() - c0).Microseconds()) / float64(b.N)
		b.ReportMetric(us, "cpu-µs/group")
		b.ReportMetric(us/float64(2*half), "cpu-µs/row")
	}

	b.Run("journal", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "j.duckdb")
		j, err := OpenDuckDB(ctx, path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		src := func(yield func(*Row, error) bool) {
			for i := range rows {
				if !yield(mk(i), nil) {
					return
				}
			}
		}
		if _, err := j.Ingest(ctx, src, now); err != nil {
			b.Fatal(err)
		}
		j.SetLinger(100 * time.Millisecond) // paced: DuckDB on one thread
		if _, err := j.startWriter(); err != nil {
			b.Fatal(err)
		}
		w0 := walSize(path)
		run(b, func(g []Change) error { _, err := j.committer.Commit(g); return err })
		b.ReportMetric(float64(walSize(path)-w0)/float64(b.N), "wal-B/group")
	})

	bare := func(b *testing.B, cols string, args func(seq int64, r *Row) []driver.Value, setup ...string) {
		db, err := sql.Open("duckdb", filepath.Join(b.TempDir(), "bare.duckdb")+"?threads=1")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE t (` + cols + `)`); err != nil {
			b.Fatal(err)
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		for _, q := range setup {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		var app *duckdb.Appender
		if err := conn.Raw(func(dc any) error {
			var err error
			app, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "t")
			return err
		}); err != nil {
			b.Fatal(err)
		}
		defer app.Close()
		var seq int64
		var tapp, tflush time.Duration
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tcpu := func() time.Duration {
			var ru syscall.Rusage
			syscall.Getrusage(1, &ru) // RUSAGE_THREAD
			return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		run(b, func(g []Change) error {
			t0 := tcpu()
			for _, ch := range g {
				seq++
				if err := app.AppendRow(args(seq, ch.Row)...); err != nil {
					return err
				}
			}
			t1 := tcpu()
			err := app.Flush()
			tapp += t1 - t0
			tflush += tcpu() - t1
			return err
		})
		b.ReportMetric(float64(tapp.Microseconds())/float64(b.N), "append-µs/group")
		b.ReportMetric(float64(tflush.Microseconds())/float64(b.N), "flush-µs/group")
	}
	const wideCols = `seq BIGINT NOT NULL, key VARCHAR NOT NULL, state VARCHAR NOT NULL, outcome VARCHAR NOT NULL,
			provider_status VARCHAR NOT NULL, provider_id VARCHAR NOT NULL, order_id VARCHAR NOT NULL, reason_code VARCHAR NOT NULL,
			problem VARCHAR NOT NULL, http_status INTEGER NOT NULL, attempts INTEGER NOT NULL, updated_at TIMESTAMP NOT NULL,
			sent_at TIMESTAMP, provider_amount_minor BIGINT, provider_date DATE, replayed BOOLEAN NOT NULL, polls INTEGER NOT NULL,
			polled_at TIMESTAMP, final_at TIMESTAMP, poll_refused_at TIMESTAMP`
	b.Run("floor_bare_appender", func(b *testing.B) { bare(b, wideCols, eventArgs) })
	b.Run("bare_noopt", func(b *testing.B) {
		bare(b, wideCols, eventArgs, "PRAGMA disable_optimizer")
	})
	b.Run("narrow_appender", func(b *testing.B) {
		bare(b, `seq BIGINT NOT NULL, key VARCHAR NOT NULL, state VARCHAR NOT NULL, attempts INTEGER NOT NULL, updated_at TIMESTAMP NOT NULL, sent_at TIMESTAMP`,
			func(seq int64, r *Row) []driver.Value {
				return []driver.Value{seq, r.Key, string(r.State), int32(r.Attempts), r.UpdatedAt.UTC(), nullTime(r.SentAt)}
			})
	})
	b.Run("floor_fsync_write", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "w"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		run(b, func([]Change) error {
			if _, err := f.Write(buf); err != nil {
				return err
			}
			return f.Sync()
		})
	})
}
