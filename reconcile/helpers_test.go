package reconcile

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
)

// MustOpen opens an in-memory Reconciler closed at the end of the test.
func MustOpen(tb testing.TB, tol string) *Reconciler {
	tb.Helper()
	opts := Options{TempDir: tb.TempDir(), MemoryLimit: "512MB"}
	if tol != "" {
		opts.Tolerance = decimal.RequireFromString(tol)
	}
	r, err := Open(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// journalRow is one row of the pipeline's journal as the contract defines it.
type journalRow struct {
	Key, Provider, Kind, Account, MTID string
	Amount                             *int64
	Currency                           string
	State, Outcome, ProviderStatus     string
	ProviderID, ReasonCode, Problem    string
	SourceFile                         string
	SourceRow                          int
}

type rejectRow struct {
	SourceFile string
	SourceRow  int
	Column     string
	Value      string
	Reason     string
	MTID       string
}

const journalDDL = `
CREATE TABLE journal (
    key VARCHAR PRIMARY KEY, provider VARCHAR, kind VARCHAR, account VARCHAR,
    merchant_transaction_id VARCHAR, amount_minor BIGINT, currency VARCHAR,
    body_sha256 VARCHAR, state VARCHAR, outcome VARCHAR, provider_status VARCHAR,
    provider_id VARCHAR, order_id VARCHAR, reason_code VARCHAR, problem VARCHAR,
    http_status INTEGER, attempts INTEGER, source_file VARCHAR, source_sheet VARCHAR,
    source_row INTEGER, created_at TIMESTAMP, updated_at TIMESTAMP, sent_at TIMESTAMP);
CREATE TABLE rejects (source_file VARCHAR, source_sheet VARCHAR, source_row INTEGER,
    column_name VARCHAR, value VARCHAR, reason VARCHAR, merchant_transaction_id VARCHAR);`

// writeJournal creates a journal DuckDB file with the contract's tables,
// filled through the Appender.
func writeJournal(tb testing.TB, path string, rows []journalRow, rejects []rejectRow) {
	tb.Helper()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(journalDDL); err != nil {
		tb.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ts := time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "journal")
		if err != nil {
			return err
		}
		for _, j := range rows {
			var amt driver.Value
			if j.Amount != nil {
				amt = *j.Amount
			}
			if err := a.AppendRow(j.Key, j.Provider, j.Kind, j.Account, j.MTID, amt, j.Currency, "sha",
				j.State, j.Outcome, j.ProviderStatus, j.ProviderID, "", j.ReasonCode, j.Problem,
				int32(200), int32(1), j.SourceFile, "", int32(j.SourceRow), ts, ts, ts); err != nil {
				return err
			}
		}
		if err := a.Close(); err != nil {
			return err
		}
		a, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "rejects")
		if err != nil {
			return err
		}
		for _, rj := range rejects {
			var id driver.Value
			if rj.MTID != "" {
				id = rj.MTID
			}
			if err := a.AppendRow(rj.SourceFile, "", int32(rj.SourceRow), rj.Column, rj.Value, rj.Reason, id); err != nil {
				return err
			}
		}
		return a.Close()
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func i64(v int64) *int64 { return &v }

// succeededRow is a journal row of a SmartRetry refund that succeeded.
func succeededRow(key, id string, minor int64, cur string) journalRow {
	return journalRow{Key: key, Provider: "smartretry", Kind: "refund", MTID: id, Amount: i64(minor),
		Currency: cur, State: "final", Outcome: "succeeded", SourceFile: "batch.csv"}
}

// collectRows reads every row, failing the test on error.
func collectRows(tb testing.TB, r *Reconciler, cats ...paybatch.Category) []paybatch.ReconRow {
	tb.Helper()
	var out []paybatch.ReconRow
	for row, err := range r.Rows(context.Background(), cats...) {
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, row)
	}
	return out
}

func moneyStr(m *paybatch.Money) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%s %s", m.String(), m.Currency.Code())
}

// runTestdata reconciles testdata/ledger.csv with testdata/results.csv.
func runTestdata(tb testing.TB) (*Reconciler, paybatch.Summary) {
	tb.Helper()
	ctx := context.Background()
	r := MustOpen(tb, "")
	if err := r.LoadLedger(ctx, "testdata/ledger.csv", ""); err != nil {
		tb.Fatal(err)
	}
	if err := r.LoadResults(ctx, "testdata/results.csv", ""); err != nil {
		tb.Fatal(err)
	}
	sum, err := r.Run(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return r, sum
}
