package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/paybatch/paybatch"
)

// rows_page.sql packs the text columns of a row into one value (NUL
// bytes between them, which of them are NULL in a number); Rows unpacks
// them. Every row must be the one rows_fields.sql (each column apart, what
// the pages read before) gives: the fixture through the exact path and a
// journal, generated data through Run's rows pass, text to neutralise and
// card numbers, and rows altered in recon_sorted itself — a NUL byte in
// an id, a reason and a source file (such a row is read again, its columns
// apart), NULL against ” in the provider currency, source file and sheet,
// empty, inline (≤ 12 bytes) and long text, dates before 1970 — at
// several page sizes, as Rows reads them (DuckDB's C API, chunkPage) and
// packed through the driver's rows.
func TestRowsPageEqualsFields(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(8, 19))
	genLedger, genResults, _ := writeGenerated(t, dir, rng, 3000, func(i int) string {
		if i%37 == 0 {
			return fmt.Sprintf("card 4111 1111 1111 %04d declined, \"quoted\"", i)
		}
		return ""
	})
	textLedger := writeFile(t, dir, "l.csv", "merchant_transaction_id,amount,currency,expected_status\nA1,10.00,USD,\nA2, 5.5 ,usd,done\nA3,7,JPY,declined\n\"=cmd|' /C calc'!A0\",1.00,EUR,\n4111 1111 1111 1111,3.00,USD,\n")
	textResults := writeFile(t, dir, "r.csv", "merchant_transaction_id,amount,currency,status,reason,transaction_id\nA1,10.00,USD,APPROVED,,T1\nA2,5.50,USD, approved ,\"card 5500-0000-0000-0004 \"\"declined\"\"\",T2\nA4,1,JPY,DECLINED,x,T4\n\"=cmd|' /C calc'!A0\",1.00,EUR,APPROVED,,\n4111 1111 1111 1111,3.00,USD,APPROVED,,5500000000000004\n")

	cases := []struct {
		name            string
		ledger, results string
		journal         bool
		rowsPass        bool
		alter           bool
	}{
		{"fixture", "testdata/ledger.csv", "testdata/results.csv", false, false, false},
		{"fixture_journal", "testdata/ledger.csv", "", true, false, false},
		{"generated", genLedger, genResults, false, true, false},
		{"text", textLedger, textResults, false, true, false},
		{"altered", genLedger, genResults, false, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(ctx, Options{TempDir: t.TempDir(), Rows: tc.rowsPass})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			loadRun(t, r, tc.ledger, "", tc.results, tc.journal)
			if _, err := r.ensureBuilt(ctx); err != nil {
				t.Fatal(err)
			}
			var m int64 // the first matched row: both sides' amounts, from a loaded file
			if tc.alter {
				sortedTable(t, r)
				if err := r.db.QueryRowContext(ctx, `SELECT min(rowid) FROM recon_sorted WHERE category = 'matched' AND src_load IS NOT NULL AND provider_currency IS NOT NULL`).Scan(&m); err != nil {
					t.Fatal(err)
				}
				for i, q := range []string{
					`UPDATE recon_sorted SET merchant_transaction_id = 'N' || chr(0) || 'UL' WHERE rowid = $1`,
					`UPDATE recon_sorted SET reason = chr(0) WHERE rowid = $1`,
					`UPDATE recon_sorted SET source_file = 'a' || chr(0) || chr(0) || 'b.csv' WHERE rowid = $1`,
					`UPDATE recon_sorted SET provider_currency = NULL WHERE rowid = $1`,
					`UPDATE recon_sorted SET provider_currency = '' WHERE rowid = $1`,
					`UPDATE recon_sorted SET source_file = '', source_sheet = '' WHERE rowid = $1`,
					`UPDATE recon_sorted SET source_sheet = 'Sheet 1' WHERE rowid = $1`,
					`UPDATE recon_sorted SET reason = repeat('long reason ', 200), ledger_status = '' WHERE rowid = $1`,
					`UPDATE recon_sorted SET provider_id = NULL, provider_status = NULL, ledger_currency = NULL WHERE rowid = $1`,
					`UPDATE recon_sorted SET source_file = 'own.csv' WHERE rowid = $1`,
					// DuckDB keeps up to 12 bytes inline, longer ones behind a
					// pointer (rows_chunks.go); dates either side of 1970
					`UPDATE recon_sorted SET merchant_transaction_id = 'twelve-bytes', provider_id = 'thirteen-byte', reason = 'é€𝄞12345', requested_date = DATE '1969-12-31', provider_date = DATE '2026-02-28' WHERE rowid = $1`,
					`UPDATE recon_sorted SET ledger_amount_minor = -9007199254740992, provider_amount_minor = 0, source_row = NULL, src_load = NULL, requested_date = DATE '1900-03-01' WHERE rowid = $1`,
				} {
					if _, err := r.db.ExecContext(ctx, q, m+int64(i)); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
			}
			r.fieldPages = true
			want := collectRows(t, r)
			r.fieldPages = false
			if len(want) < 5 {
				t.Fatalf("only %d rows", len(want))
			}
			if tc.alter {
				w := want[m : m+12]
				if w[0].MerchantTxID != "N\x00UL" || w[1].Reason != "\x00" || w[2].Source.File != "a\x00\x00b.csv" ||
					w[3].ProviderAmount != nil || w[4].ProviderAmount == nil || w[5].Source.File != "" ||
					w[6].Source.Sheet != "Sheet 1" || w[9].Source.File != "own.csv" || w[8].LedgerAmount == nil ||
					w[10].MerchantTxID != "twelve-bytes" || w[10].ProviderID != "thirteen-byte" || w[10].RequestedDate.Year() != 1969 ||
					w[11].LedgerAmount.Minor != -9007199254740992 || w[11].ProviderAmount.Minor != 0 || w[11].Source.Row != 0 {
					t.Fatalf("the altered rows are not what the test expects: %+v", w)
				}
			}
			// the pages read as Rows reads them (the C API's chunks,
			// rows_chunks.go) and the packed pages through the driver's
			// rows
			for _, driverPages := range []bool{false, true} {
				r.driverPages = driverPages
				for _, page := range []int{0, 1, 4, 1000} {
					if page == 1 && tc.name == "generated" {
						// Pages of one row over the pass's view of the
						// generated rows: thousands of queries, each
						// planning the view (≈ 10 s a road; the case
						// took 28 s). One-row pages are read over
						// the view in "text", over these rows (as a
						// table) in "altered".
						continue
					}
					r.pageRows = page
					got := collectRows(t, r)
					if len(got) != len(want) {
						t.Fatalf("page %d, driver %v: %d rows, want %d", page, driverPages, len(got), len(want))
					}
					bad := 0
					for i := range want {
						if !reflect.DeepEqual(got[i], want[i]) && bad < 5 {
							bad++
							t.Errorf("page %d, driver %v, row %d:\npage: %+v\nfields: %+v", page, driverPages, i, got[i], want[i])
						}
					}
				}
			}
			r.pageRows, r.driverPages = 0, false
			// the categories apart, as the workbook asks for them
			var some []paybatch.ReconRow
			for _, row := range want {
				if row.Category == paybatch.CatMatched {
					some = append(some, row)
				}
			}
			if got := collectRows(t, r, paybatch.CatMatched); !reflect.DeepEqual(got, some) {
				t.Errorf("matched alone: %d rows differ from the fields' %d", len(got), len(some))
			}
		})
	}
}

// TestRowsReadChunks: Rows reaches DuckDB's C connection under the
// driver's (chunkConn), so its pages take the C API's road; a driver
// version that keeps it elsewhere fails here instead of slowing every
// report down to the driver's rows unnoticed.
func TestRowsReadChunks(t *testing.T) {
	conn := mustConn(t)
	if err := conn.Raw(func(dc any) error {
		if _, ok := chunkConn(dc); !ok {
			t.Errorf("chunkConn cannot reach the C connection under %T", dc)
		}
		if _, ok := chunkConn(struct{ conn int }{}); ok {
			t.Error("chunkConn took a connection from something else")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
