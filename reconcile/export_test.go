package reconcile

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/writers"
)

func exceptionCats() []paybatch.Category {
	var out []paybatch.Category
	for _, c := range paybatch.Categories {
		if c != paybatch.CatMatched {
			out = append(out, c)
		}
	}
	return out
}

var exportRejects = []paybatch.RowError{
	{Source: paybatch.Source{File: "refunds.csv", Row: 7}, Column: "amount", Value: "12,50", Err: paybatch.ErrBadAmount},
	{Source: paybatch.Source{File: "=refunds.csv", Row: 8}, Column: "card", Value: "4111 1111 1111 1111", Err: errors.New("card numbers are not accepted")},
}

func rejectSeq(yield func(paybatch.RowError, error) bool) {
	for _, re := range exportRejects {
		if !yield(re, nil) {
			return
		}
	}
}

// compareCSVExports writes the CSV exports of r with DuckDB (ExportCSV)
// and with Go (writers.WriteCSV over Rows, the reference) and compares
// every file byte for byte.
func compareCSVExports(t *testing.T, r *Reconciler) (duckDir string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ref, duck := filepath.Join(dir, "ref"), filepath.Join(dir, "duck")
	refPaths, err := writers.WriteCSV(ctx, ref, writers.Report{Exceptions: r.Rows(ctx, exceptionCats()...),
		Matched: r.Rows(ctx, paybatch.CatMatched), Rejected: rejectSeq})
	if err != nil {
		t.Fatal(err)
	}
	duckPaths, err := r.ExportCSV(ctx, duck, rejectSeq)
	if err != nil {
		t.Fatal(err)
	}
	if len(refPaths) != len(duckPaths) || len(duckPaths) != len(paybatch.Categories)+1 {
		t.Fatalf("files: DuckDB %q, reference %q", duckPaths, refPaths)
	}
	for i := range refPaths {
		if filepath.Base(refPaths[i]) != filepath.Base(duckPaths[i]) {
			t.Errorf("file %d: DuckDB %s, reference %s", i, duckPaths[i], refPaths[i])
			continue
		}
		want, _ := os.ReadFile(refPaths[i])
		got, _ := os.ReadFile(duckPaths[i])
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs:\nDuckDB:\n%s\nreference:\n%s", filepath.Base(refPaths[i]), got, want)
		}
		st, _ := os.Stat(duckPaths[i])
		if st.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v, want 0644", duckPaths[i], st.Mode())
		}
	}
	ents, _ := os.ReadDir(duck)
	if len(ents) != len(duckPaths) {
		t.Errorf("leftover files in %s: %d entries", duck, len(ents))
	}
	return duck
}

// TestExportCSVEqualsWriteCSV: on every golden fixture, the CSV exports
// DuckDB writes are byte for byte those writers.WriteCSV writes.
func TestExportCSVEqualsWriteCSV(t *testing.T) {
	cases := []struct {
		name, ledger, sheet, results string
		journal                      bool
		tol                          string
	}{
		{name: "results_csv", ledger: "testdata/ledger.csv", results: "testdata/results.csv"},
		{name: "journal", ledger: "testdata/ledger.csv", journal: true},
		{name: "xlsx_ledger", ledger: "testdata/ledger.xlsx", sheet: "Ledger", results: "testdata/results.csv"},
		{name: "tolerance", ledger: "testdata/ledger.csv", results: "testdata/results.csv", tol: "0.02"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := MustOpen(t, tc.tol)
			loadRun(t, r, tc.ledger, tc.sheet, tc.results, tc.journal)
			compareCSVExports(t, r)
		})
	}
}

// TestExportCSVAdversarialText: text that needs quoting, neutralising or
// masking, in every text column a results file and a ledger can fill.
func TestExportCSVAdversarialText(t *testing.T) {
	texts := []string{"=1+1", "+SUM(A1)", "-2", "@cmd", "\tTAB", "a,b", `say "hi"`, "line\nbreak", "cr\rx", " lead", "\u00a0nbsp",
		"\u3000ideo", `\.`, "4111 1111 1111 1111", "card 4111-1111-1111-1111 declined", "=4111111111111111", "ünïcödé", "trail ", "1234567890123"}
	dir := t.TempDir()
	var l, p strings.Builder
	l.WriteString("merchant_transaction_id,amount,currency,expected_status\n")
	p.WriteString("merchant_transaction_id,transaction_id,amount,currency,status,reason\n")
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	amount := func(i int) string {
		switch i % 3 {
		case 1:
			return fmt.Sprint(i)
		case 2:
			return fmt.Sprintf("%d.%03d", i, i)
		}
		return fmt.Sprintf("%d.%02d", i, i)
	}
	for i, s := range texts {
		// the text as an id (ids are kept as they are, neutralised, never
		// masked), a provider id and a reason
		id := s
		if i%2 == 1 {
			id = fmt.Sprintf("ID-%02d", i)
		}
		cur := []string{"USD", "JPY", "KWD"}[i%3]
		fmt.Fprintf(&l, "%s,%s,%s,\n", q(id), amount(i), cur)
		if i%4 != 3 {
			fmt.Fprintf(&p, "%s,%s,%s,%s,%s,%s\n", q(id), q(s), amount(i+i%2*3), cur, []string{"APPROVED", "DECLINED"}[i%5/4], q(s))
		}
	}
	fmt.Fprintf(&p, "%s,TX9,-0.07,USD,APPROVED,\n", q("=neg"))
	lp, pp := filepath.Join(dir, "ledger.csv"), filepath.Join(dir, "results.csv")
	os.WriteFile(lp, []byte(l.String()), 0o644)
	os.WriteFile(pp, []byte(p.String()), 0o644)
	ctx := context.Background()
	r := MustOpen(t, "")
	sum := loadRun(t, r, lp, "", pp, false)
	var nonEmpty []paybatch.Category
	for _, c := range paybatch.Categories {
		if sum.Categories[c].Count > 0 {
			nonEmpty = append(nonEmpty, c)
		}
	}
	if len(nonEmpty) < 3 {
		t.Fatalf("fixture too tame: categories %v", nonEmpty)
	}
	compareCSVExports(t, r)

	// Text the loaders never let through (a status is vocabulary, ids and
	// reasons are trimmed, reasons are masked in rows_sorted.sql) can still
	// reach recon_sorted from a journal or a later loader: written into the
	// table directly, which both Rows and ExportCSV read.
	if _, err := r.ensureBuilt(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range texts {
		for _, col := range []string{"merchant_transaction_id", "ledger_status", "provider_status", "provider_id", "reason", "source_file", "source_sheet"} {
			if _, err := r.db.ExecContext(ctx, `UPDATE recon_sorted SET `+col+` = $1 WHERE rowid = $2`,
				texts[(i+len(col))%len(texts)], int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		_ = s
	}
	duck := compareCSVExports(t, r)
	// the rows do hold card numbers and text to neutralise; the export
	// holds them masked
	rows := collectRows(t, r)
	if !slices.ContainsFunc(rows, func(row paybatch.ReconRow) bool { return strings.Contains(row.LedgerStatus, "4111 1111 1111 1111") }) {
		t.Fatal("fixture has no card number in a status")
	}
	ents, _ := os.ReadDir(duck)
	for _, e := range ents {
		if e.Name() == writers.RejectedCSV {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(duck, e.Name()))
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs[1:] {
			for _, col := range []int{4, 7, 9} { // the statuses and the reason: free text, masked (ids never are)
				if strings.Contains(rec[col], "1111 1111 1111") || strings.Contains(rec[col], "1111-1111-1111") {
					t.Errorf("%s: %s holds an unmasked card number: %q", e.Name(), recs[0][col], rec[col])
				}
			}
		}
	}
	if !slices.ContainsFunc(rows, func(row paybatch.ReconRow) bool { return row.MerchantTxID == "=1+1" }) {
		t.Fatal("fixture has no id to neutralise")
	}
}

// TestRowsOptionOnePass: with Options.Rows, Run sums the categories from
// the rows' tables in its one pass over the files; the summary, the line
// counts and the rows are those of the two-pass path on every golden
// fixture.
func TestRowsOptionOnePass(t *testing.T) {
	cases := []struct {
		name, ledger, sheet, results string
		journal                      bool
		tol                          string
	}{
		{name: "results_csv", ledger: "testdata/ledger.csv", results: "testdata/results.csv"},
		{name: "journal", ledger: "testdata/ledger.csv", journal: true},
		{name: "xlsx_ledger", ledger: "testdata/ledger.xlsx", sheet: "Ledger", results: "testdata/results.csv"},
		{name: "tolerance", ledger: "testdata/ledger.csv", results: "testdata/results.csv", tol: "0.02"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var got [2]string
			var lines [2][2]int64
			for i, rows := range []bool{false, true} {
				opts := Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: rows}
				if tc.tol != "" {
					opts.Tolerance = decimal.RequireFromString(tc.tol)
				}
				r, err := Open(ctx, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				sum := loadRun(t, r, tc.ledger, tc.sheet, tc.results, tc.journal)
				got[i] = render(t, r, sum)
				lines[i][0], lines[i][1] = r.Lines()
			}
			if got[0] != got[1] {
				t.Errorf("Options.Rows changes the result:\ntwo passes:\n%s\none pass:\n%s", got[0], got[1])
			}
			if lines[0] != lines[1] {
				t.Errorf("line counts: two passes %v, one pass %v", lines[0], lines[1])
			}
		})
	}
}

// TestExportParquetInRowsOrder: export_category.sql reads recon_sorted
// alone, without ORDER BY (a plain scan keeps the table's order). Every
// Parquet file holds, in file order, exactly the rows of the query it
// replaced (joins with currencies and loads, ORDER BY rowid): the results
// fixture, and a journal (its own source per line, id-less rejects).
func TestExportParquetInRowsOrder(t *testing.T) {
	const reference = `SELECT merchant_transaction_id,
        ledger_amount_minor, ledger_currency, lc.exp AS ledger_currency_exponent,
        CASE WHEN regexp_matches(ledger_status, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(ledger_status) ELSE ledger_status END AS ledger_status,
        provider_amount_minor, provider_currency, pc.exp AS provider_currency_exponent,
        CASE WHEN regexp_matches(provider_status, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(provider_status) ELSE provider_status END AS provider_status,
        provider_id, reason,
        coalesce(s.source_file, ld.source_file) AS source_file,
        coalesce(s.source_sheet, ld.source_sheet) AS source_sheet, source_row,
        requested_date, provider_date,
        requested_date IS NOT NULL AND provider_date IS NOT NULL AND provider_date <> requested_date AS date_moved
    FROM recon_sorted AS s
    LEFT JOIN currencies AS lc ON lc.code = ledger_currency
    LEFT JOIN currencies AS pc ON pc.code = provider_currency
    LEFT JOIN loads AS ld ON ld.load_no = s.src_load
    WHERE s.rowid BETWEEN $first AND $last
    ORDER BY s.rowid`
	ctx := context.Background()
	// generated: 5,000 ids, so that the unique columns pass the export's
	// DICTIONARY_SIZE_LIMIT (written without a dictionary) while the
	// currencies and statuses stay under it
	genLedger, genResults, _ := writeGenerated(t, t.TempDir(), rand.New(rand.NewPCG(19, 8)), 5000, nil)
	// files named with what SQL or its parameters might take for their own
	// (the names reach the export as parameters of a CASE over the loads),
	// the ledger a sheet of a workbook
	named := t.TempDir()
	for _, f := range []struct{ from, to string }{
		{"testdata/ledger.xlsx", "it's $load_file_1 ledger.xlsx"}, {"testdata/results.csv", `results $1 'x' "y" ?.csv`}} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, named, f.to, string(b))
	}
	for _, input := range []string{"results", "journal", "generated", "names"} {
		t.Run(input, func(t *testing.T) {
			r := MustOpen(t, "")
			switch input {
			case "generated":
				loadRun(t, r, genLedger, "", genResults, false)
			case "names":
				loadRun(t, r, filepath.Join(named, "it's $load_file_1 ledger.xlsx"), "",
					filepath.Join(named, `results $1 'x' "y" ?.csv`), false)
			default:
				loadRun(t, r, "testdata/ledger.csv", "", "testdata/results.csv", input == "journal")
			}
			dir := t.TempDir()
			if _, err := r.ExportParquet(ctx, dir); err != nil {
				t.Fatal(err)
			}
			ranges, err := r.ensureBuilt(ctx)
			if err != nil {
				t.Fatal(err)
			}
			text := func(q string, args ...any) []string {
				rows, err := r.db.QueryContext(ctx, `SELECT t::VARCHAR FROM (`+q+`) AS t`, args...)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []string
				for rows.Next() {
					var s string
					if err := rows.Scan(&s); err != nil {
						t.Fatal(err)
					}
					out = append(out, s)
				}
				return out
			}
			several := false
			for _, cr := range ranges {
				want := text(reference, sql.Named("first", cr.first), sql.Named("last", cr.last))
				got := text(`SELECT * FROM read_parquet(?, hive_partitioning = false)`, filepath.Join(dir, string(cr.cat)+".parquet"))
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s.parquet:\n%s\nwant:\n%s", cr.cat, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				several = several || len(want) > 2
			}
			if !several {
				t.Error("no category of several rows: the order is not tested")
			}
			if input == "generated" { // both kinds of column were written
				kinds := text(`SELECT DISTINCT encodings LIKE '%DICTIONARY%' FROM parquet_metadata(?)`, filepath.Join(dir, "matched.parquet"))
				if len(kinds) != 2 {
					t.Errorf("matched.parquet: columns with a dictionary / without: %v, want both", kinds)
				}
			}
		})
	}
}
