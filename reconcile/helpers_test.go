package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
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

// mustConn is a connection to the database of MustOpen (no tolerance),
// closed when tb ends (before the Reconciler).
func mustConn(tb testing.TB) *sql.Conn {
	tb.Helper()
	r := MustOpen(tb, "")
	conn, err := r.db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
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
	// HTTP is the provider's answer (0: never answered). Zero means 200,
	// except for the states rejected and conflict, which stay 0 (refused
	// before sending) unless set.
	HTTP           int32
	ProviderAmount *int64 // what the provider recorded, when it said
	// Direct Debit dates, "2006-01-02": asked for, and used by the provider
	CollectionDate, ProviderDate string
}

type rejectRow struct {
	SourceFile string
	SourceRow  int
	Column     string
	Value      string
	Reason     string
	MTID       string
}

// writeJournal creates a journal with the journal package (its migrations,
// its exported views) holding rows and rejects as given.
func writeJournal(tb testing.TB, path string, rows []journalRow, rejects []rejectRow) {
	tb.Helper()
	ctx := context.Background()
	j, err := journal.OpenDuckDB(ctx, path, journal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer j.Close()
	ts := time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)
	src := func(yield func(*journal.Row, error) bool) {
		for _, r := range rows {
			row := &journal.Row{Key: r.Key, Provider: paybatch.Provider(r.Provider), Kind: paybatch.Kind(r.Kind), Account: r.Account,
				MerchantTxID: r.MTID, BodySHA256: "sha", State: paybatch.State(r.State), Outcome: paybatch.Outcome(r.Outcome),
				ProviderStatus: r.ProviderStatus, ProviderID: r.ProviderID, ReasonCode: r.ReasonCode, Problem: r.Problem,
				HTTPStatus: int(r.HTTP), Attempts: 1, ProviderAmount: r.ProviderAmount, Source: paybatch.Source{File: r.SourceFile, Row: r.SourceRow},
				CreatedAt: ts, UpdatedAt: ts, SentAt: ts}
			if c := strings.ToUpper(strings.TrimSpace(r.Currency)); c != "" {
				cur, err := paybatch.ParseCurrency(c)
				if err != nil {
					yield(nil, err)
					return
				}
				row.Amount.Currency = cur
			}
			if r.Amount != nil {
				row.Amount.Minor = *r.Amount
			}
			for _, d := range []struct {
				s  string
				to *time.Time
			}{{r.CollectionDate, &row.CollectionDate}, {r.ProviderDate, &row.ProviderDate}} {
				if d.s != "" {
					t, err := time.Parse("2006-01-02", d.s)
					if err != nil {
						yield(nil, err)
						return
					}
					*d.to = t
				}
			}
			if row.HTTPStatus == 0 && r.State != "rejected" && r.State != "conflict" {
				row.HTTPStatus = 200
			}
			if !yield(row, nil) {
				return
			}
		}
	}
	if _, err := j.Ingest(ctx, src, ts); err != nil {
		tb.Fatal(err)
	}
	var rs []journal.Reject
	for _, r := range rejects {
		rs = append(rs, journal.Reject{Source: paybatch.Source{File: r.SourceFile, Row: r.SourceRow}, Column: r.Column,
			Value: r.Value, Reason: r.Reason, MerchantTxID: r.MTID})
	}
	if err := j.RecordRejects(ctx, rs); err != nil {
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
	return runFiles(tb, "testdata/ledger.csv", "testdata/results.csv")
}

// runFiles reconciles ledger against results (CSV or XLSX, first sheet)
// with a fresh MustOpen reconciler, failing the test on any error.
func runFiles(tb testing.TB, ledger, results string) (*Reconciler, paybatch.Summary) {
	tb.Helper()
	r := MustOpen(tb, "")
	return r, loadRun(tb, r, ledger, "", results, false)
}

// loadRun loads ledger (sheet: of an XLSX ledger, "" the first) into r,
// then results — or, when journal is set, the journal of
// testdata/journal.csv and testdata/rejects.csv (journalFromCSV) — and
// runs r, failing the test on any error.
func loadRun(tb testing.TB, r *Reconciler, ledger, sheet, results string, journal bool) paybatch.Summary {
	tb.Helper()
	ctx := context.Background()
	if err := r.LoadLedger(ctx, ledger, sheet); err != nil {
		tb.Fatal(err)
	}
	var err error
	if journal {
		err = r.LoadJournal(ctx, journalFromCSV(tb, tb.TempDir()))
	} else {
		err = r.LoadResults(ctx, results, "")
	}
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := r.Run(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return sum
}

// writeEURPair writes ledger.csv and results.csv of n ids (prefix and seven
// digits) under dir: every id in the ledger with an EUR amount, and in the
// results, APPROVED, every id but those skip names (nil: none), with the
// ledger's amount and one unit more for odd ids (amount mismatches).
func writeEURPair(tb testing.TB, dir, prefix string, n int, skip func(i int) bool) (ledger, results string) {
	tb.Helper()
	var lb, pb strings.Builder
	lb.WriteString("merchant_transaction_id,amount,currency\n")
	pb.WriteString("merchant_transaction_id,amount,currency,status\n")
	for i := range n {
		fmt.Fprintf(&lb, "%s%07d,%d.%02d,EUR\n", prefix, i, i%900, i%100)
		if skip == nil || !skip(i) {
			fmt.Fprintf(&pb, "%s%07d,%d.%02d,EUR,APPROVED\n", prefix, i, i%900+i%2, i%100)
		}
	}
	return writeFile(tb, dir, "ledger.csv", lb.String()), writeFile(tb, dir, "results.csv", pb.String())
}

// sortedTable makes recon_sorted a table when the rows pass left it a view
// over recon_pass (passView): the same rows in the same order, for a test
// that writes into it (a view cannot be updated).
func sortedTable(tb testing.TB, r *Reconciler) {
	tb.Helper()
	ctx := context.Background()
	var views int
	if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_views() WHERE view_name = 'recon_sorted'`).Scan(&views); err != nil {
		tb.Fatal(err)
	}
	if views == 0 {
		return
	}
	for _, q := range []string{
		`CREATE TABLE recon_sorted_copy AS SELECT * EXCLUDE (rowid) FROM recon_sorted ORDER BY rowid`,
		`DROP VIEW recon_sorted`,
		`DROP TABLE recon_pass`,
		`ALTER TABLE recon_sorted_copy RENAME TO recon_sorted`,
	} {
		if _, err := r.db.ExecContext(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
}
