package reconcile

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

func writeFile(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad input is refused with an error naming file, row, column and value, or
// (for mixed currencies on one id) lands in an explicit category. Never a
// crash, never a silent skip.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name    string
		ledger  string // CSV body; "" = use the good ledger
		results string // CSV body; "" = none
		is      error
		want    []string // substrings of the error
	}{
		{name: "ledger without key column", ledger: "Amount,Currency\n10.00,USD\n",
			is: paybatch.ErrMissingColumn, want: []string{"no merchant_transaction_id column", `"Amount", "Currency"`}},
		{name: "empty ledger", ledger: "",
			is: paybatch.ErrUnusableFile, want: []string{"empty"}},
		{name: "header-only ledger", ledger: "Reference,Amount,Ccy\n",
			is: paybatch.ErrUnusableFile, want: []string{"header but no rows"}},
		{name: "excess precision", ledger: "Reference,Amount,Ccy\nA,10.005,USD\nB,1.5,JPY\n",
			is: paybatch.ErrBadAmount, want: []string{`row 2, column "Amount", value "10.005"`, "more than 2 decimal places for USD", "never rounds",
				`row 3, column "Amount", value "1.5"`, "more than 0 decimal places for JPY"}},
		{name: "thousands separator", ledger: "Reference,Amount,Ccy\nA,\"1,000.00\",USD\n",
			is: paybatch.ErrBadAmount, want: []string{`value "1,000.00"`, "not a plain decimal"}},
		{name: "exponent", ledger: "Reference,Amount,Ccy\nA,1e3,USD\n",
			is: paybatch.ErrBadAmount, want: []string{`value "1e3"`}},
		{name: "unknown currency", ledger: "Reference,Amount,Ccy\nA,1.00,XYZ\n",
			is: paybatch.ErrBadCurrency, want: []string{`column "Ccy", value "XYZ"`, "not an ISO 4217"}},
		{name: "missing id", ledger: "Reference,Amount,Ccy\n,1.00,USD\n",
			is: paybatch.ErrMissingField, want: []string{"row 2", "missing merchant_transaction_id"}},
		{name: "unknown expected status", ledger: "Reference,Amount,Ccy,Status\nA,1.00,USD,maybe\n",
			is: paybatch.ErrBadField, want: []string{`column "Status", value "maybe"`, "unknown expected status"}},
		{name: "two id columns", ledger: "Reference,Merchant Txn ID,Amount,Ccy\nA,A,1.00,USD\n",
			is: paybatch.ErrBadField, want: []string{`both mean merchant_transaction_id`}},
		{name: "unknown provider status", results: "merchant_transaction_id,amount,currency,status\nA,1.00,USD,APPROVED\nB,1.00,USD,REFUNDED\n",
			is: paybatch.ErrBadField, want: []string{`row 3, column "status", value "REFUNDED"`, "unknown provider status"}},
		{name: "results without status", results: "merchant_transaction_id,amount,currency\nA,1.00,USD\n",
			is: paybatch.ErrMissingColumn, want: []string{"no status column"}},
		{name: "results missing status value", results: "merchant_transaction_id,amount,currency,status\nA,1.00,USD,\n",
			is: paybatch.ErrBadField, want: []string{"row 2", "missing status"}},
		{name: "unsupported file", results: "-", is: paybatch.ErrUnusableFile, want: []string{"unsupported file type"}},
	}
	good := "Reference,Amount,Ccy\nA,1.00,USD\n"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			r := MustOpen(t, "")
			var err error
			if tc.results == "" {
				err = r.LoadLedger(ctx, writeFile(t, dir, "ledger.csv", tc.ledger), "")
			} else {
				if lerr := r.LoadLedger(ctx, writeFile(t, dir, "ledger.csv", good), ""); lerr != nil {
					t.Fatal(lerr)
				}
				name := "results.csv"
				if tc.results == "-" {
					name = "results.json"
				}
				err = r.LoadResults(ctx, writeFile(t, dir, name, tc.results), "")
			}
			if err == nil {
				// the file's structure is fine: its lines are checked by Run
				_, err = r.Run(ctx)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error does not wrap %v: %v", tc.is, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// A refused file leaves nothing behind: Run refuses the reconcile naming
// the bad line, forgets the file, and the next Run reconciles the rest as if
// the file had never been loaded.
func TestRefusedFileLoadsNothing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r := MustOpen(t, "")
	if err := r.LoadLedger(ctx, writeFile(t, dir, "a.csv", "Reference,Amount,Ccy\nA,1.00,USD\n"), ""); err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, dir, "b.csv", "Reference,Amount,Ccy\nB,2.00,USD\nC,2.001,USD\n")
	if err := r.LoadLedger(ctx, bad, ""); err != nil {
		t.Fatal(err) // the structure is fine
	}
	if err := r.LoadResults(ctx, writeFile(t, dir, "r.csv", "merchant_transaction_id,amount,currency,status\nA,1,USD,APPROVED\n"), ""); err != nil {
		t.Fatal(err)
	}
	_, err := r.Run(ctx)
	var ie *InputError
	if !errors.As(err, &ie) || ie.File != bad || !strings.Contains(err.Error(), `row 3, column "Amount", value "2.001"`) {
		t.Fatalf("bad ledger line: %v", err)
	}
	for _, err := range r.Rows(ctx) {
		if !errors.Is(err, ErrNotRun) {
			t.Fatalf("Rows after a refused Run: %v", err)
		}
	}
	sum, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Categories[paybatch.CatMatched].Count != 1 || sum.LedgerTotals["USD"].String() != "1.00" {
		t.Fatalf("refused file leaked in: %+v", sum)
	}
}

func TestRunWithoutLedger(t *testing.T) {
	r := MustOpen(t, "")
	if _, err := r.Run(context.Background()); !errors.Is(err, paybatch.ErrUnusableFile) {
		t.Fatalf("Run without a ledger: %v", err)
	}
	for _, err := range r.Rows(context.Background()) {
		if !errors.Is(err, ErrNotRun) {
			t.Fatalf("Rows before Run: %v", err)
		}
	}
}

// Parquet: DECIMAL and text amounts load exactly; a DOUBLE amount is refused.
func TestParquetLedger(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dec := filepath.Join(dir, "dec.parquet")
	dbl := filepath.Join(dir, "dbl.parquet")
	if _, err := db.Exec(`COPY (SELECT * FROM (VALUES ('A', 10.50::DECIMAL(18,2), 'USD'), ('B', 7::DECIMAL(18,2), 'JPY'))
		AS t("Merchant Txn ID", "Amount", "Ccy")) TO '` + dec + `' (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`COPY (SELECT 'A' AS reference, 10.5::DOUBLE AS amount, 'USD' AS currency) TO '` + dbl + `' (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := MustOpen(t, "")
	// 7.00 JPY: trailing zeros are not precision, it is 7 yen.
	if err := r.LoadLedger(ctx, dec, ""); err != nil {
		t.Fatal(err)
	}
	frac := filepath.Join(dir, "frac.parquet")
	if _, err := db.Exec(`COPY (SELECT 'C' AS reference, 7.5::DECIMAL(18,2) AS amount, 'JPY' AS ccy) TO '` + frac + `' (FORMAT parquet)`); err != nil {
		t.Fatal(err)
	}
	// 7.50 JPY has a fraction of a yen: refused, never rounded.
	if err := r.LoadLedger(ctx, frac, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx); !errors.Is(err, paybatch.ErrBadAmount) || !strings.Contains(err.Error(), `value "7.50"`) {
		t.Fatalf("DECIMAL(18,2) JPY 7.50: %v", err)
	}
	r2 := MustOpen(t, "")
	if err := r2.LoadLedger(ctx, dbl, ""); !errors.Is(err, paybatch.ErrBadAmount) || !strings.Contains(err.Error(), "binary float") {
		t.Fatalf("DOUBLE amount: %v", err)
	}
	ok := filepath.Join(dir, "o'k.parquet") // a quote in the path must not break the stage view
	if _, err := db.Exec(`COPY (SELECT 'A' AS "Merchant Txn ID", 10.50::DECIMAL(18,2) AS "Amount", 'USD' AS "Ccy", 'x' AS "Other""Col") TO ? (FORMAT parquet)`, ok); err != nil {
		t.Fatal(err)
	}
	r3 := MustOpen(t, "")
	if err := r3.LoadLedger(ctx, ok, ""); err != nil {
		t.Fatal(err)
	}
	if err := r3.LoadResults(ctx, writeFile(t, dir, "r.csv", "merchant_transaction_id,amount,currency,status\nA,10.5,USD,successful\n"), ""); err != nil {
		t.Fatal(err)
	}
	sum, err := r3.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Categories[paybatch.CatMatched].Count != 1 {
		t.Fatalf("parquet ledger did not match: %+v", sum)
	}
}

// The journal is attached read-only: it is byte-identical afterwards, and a
// journal with an unknown state is refused.
func TestJournalReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := journalFromCSV(t, dir)
	before := fileHash(t, path)
	r := MustOpen(t, "")
	ctx := context.Background()
	if err := r.LoadLedger(ctx, "testdata/ledger.csv", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadJournal(ctx, path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if after := fileHash(t, path); after != before {
		t.Fatal("journal file changed")
	}

	odd := filepath.Join(dir, "o'dd.duckdb") // a quote in the path must not break ATTACH
	writeJournal(t, odd, []journalRow{{Key: "k1", MTID: "A", Amount: i64(100), Currency: "USD", State: "lost"}}, nil)
	err := r.LoadJournal(ctx, odd)
	if !errors.Is(err, paybatch.ErrBadField) || !strings.Contains(err.Error(), `unknown state/outcome (state "lost"`) {
		t.Fatalf("unknown state: %v", err)
	}
	if err := r.LoadJournal(ctx, "testdata/ledger.csv"); !errors.Is(err, paybatch.ErrUnusableFile) {
		t.Fatalf("not a journal: %v", err)
	}
}

func fileHash(t testing.TB, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestXLSXSheets(t *testing.T) {
	ctx := context.Background()
	r := MustOpen(t, "")
	err := r.LoadLedger(ctx, "testdata/ledger.xlsx", "Missing")
	if !errors.Is(err, paybatch.ErrUnusableFile) || !strings.Contains(err.Error(), `"Ledger", "Notes"`) {
		t.Fatalf("missing sheet: %v", err)
	}
	// the first sheet is the default
	if err := r.LoadLedger(ctx, "testdata/ledger.xlsx", ""); err != nil {
		t.Fatal(err)
	}
}

// Parquet export: one file per non-empty category, nothing left half-written.
func TestExportParquet(t *testing.T) {
	ctx := context.Background()
	r, sum := runTestdata(t)
	dir := t.TempDir()
	files, err := r.ExportParquet(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	for _, c := range paybatch.Categories {
		if sum.Categories[c].Count > 0 {
			n++
		}
	}
	if len(files) != n {
		t.Fatalf("%d files for %d non-empty categories", len(files), n)
	}
	var amt int64
	var cur string
	var exp int32
	if err := db.QueryRow(`SELECT ledger_amount_minor, ledger_currency, ledger_currency_exponent FROM read_parquet(?) WHERE merchant_transaction_id = 'R-1007'`,
		filepath.Join(dir, "matched.parquet")).Scan(&amt, &cur, &exp); err != nil {
		t.Fatal(err)
	}
	if amt != 12000 || cur != "KWD" || exp != 3 {
		t.Fatalf("R-1007 exported as %d %s exp %d", amt, cur, exp)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// Issue #15: the first record of a ledger or results file with more fields
// than the header (an unquoted "1,234.00") was read as 1.00 and matched;
// from the second record on it was refused. Every record is refused now, in
// both kinds of file, naming the line, the field counts and the fix; so is
// a record with fewer fields.
func TestFieldCountEveryRecord(t *testing.T) {
	good := map[fileKind]string{
		kindLedger:  "merchant_transaction_id,currency,amount\nA,USD,1234.00\nB,USD,2.00\n",
		kindResults: "merchant_transaction_id,currency,status,amount\nA,USD,APPROVED,1234.00\nB,USD,APPROVED,2.00\n",
	}
	bad := map[string]map[fileKind]string{
		"first record, extra field": {
			kindLedger:  "merchant_transaction_id,currency,amount\nA,USD,1,234.00\nB,USD,2.00\n",
			kindResults: "merchant_transaction_id,currency,status,amount\nA,USD,APPROVED,1,234.00\nB,USD,APPROVED,2.00\n",
		},
		"every record, extra field": {
			kindLedger:  "merchant_transaction_id,currency,amount\nA,USD,1,234.00\nB,USD,2,000.00\n",
			kindResults: "merchant_transaction_id,currency,status,amount\nA,USD,APPROVED,1,234.00\nB,USD,APPROVED,2,000.00\n",
		},
		"second record, extra field": {
			kindLedger:  "merchant_transaction_id,currency,amount\nB,USD,2.00\nA,USD,1,234.00\n",
			kindResults: "merchant_transaction_id,currency,status,amount\nB,USD,APPROVED,2.00\nA,USD,APPROVED,1,234.00\n",
		},
		"first record, short": {
			kindLedger:  "merchant_transaction_id,currency,amount\nA,USD\nB,USD,2.00\n",
			kindResults: "merchant_transaction_id,currency,status,amount\nA,USD,APPROVED\nB,USD,APPROVED,2.00\n",
		},
	}
	for name, files := range bad {
		for _, kind := range []fileKind{kindLedger, kindResults} {
			t.Run(name+"/"+string(kind), func(t *testing.T) {
				dir := t.TempDir()
				ctx := context.Background()
				r := MustOpen(t, "")
				ledger, results := good[kindLedger], good[kindResults]
				if kind == kindLedger {
					ledger = files[kind]
				} else {
					results = files[kind]
				}
				lp, rp := writeFile(t, dir, "ledger.csv", ledger), writeFile(t, dir, "results.csv", results)
				err := r.LoadLedger(ctx, lp, "")
				if err == nil {
					err = r.LoadResults(ctx, rp, "")
				}
				if err == nil {
					var sum paybatch.Summary
					sum, err = r.Run(ctx)
					if err == nil {
						t.Fatalf("accepted: %+v", sum)
					}
				}
				msg := err.Error()
				wantLine := "row 2"
				if strings.HasPrefix(name, "second") {
					wantLine = "row 3"
				}
				wantCounts := "where the header has 3"
				if kind == kindResults {
					wantCounts = "where the header has 4"
				}
				for _, s := range []string{wantLine, wantCounts} {
					if !strings.Contains(msg, s) {
						t.Errorf("error lacks %q: %v", s, err)
					}
				}
				if strings.Contains(name, "extra") && !strings.Contains(msg, "double quotes") {
					t.Errorf("error does not say to quote the value: %v", err)
				}
				if !errors.Is(err, paybatch.ErrUnusableFile) {
					t.Errorf("error is not ErrUnusableFile: %v", err)
				}
			})
		}
	}
}

// A Parquet ledger whose lines are all blank — NULL, or only spaces (a
// no-break space is a space) — has no rows; one blank line before a real
// one does not hide it. (checkHasLines reads the file's own columns first
// and checked.sql's rule only when that finds nothing but spaces.)
func TestParquetBlankLines(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, rows string
		wantErr    bool
	}{
		{"all NULL", `(NULL, NULL, NULL), (NULL, NULL, NULL)`, true},
		{"only spaces", `(' ', NULL, chr(160)), (NULL, NULL, chr(12288) || ' ')`, true},
		{"spaces then a line", `(chr(160), NULL, ' '), ('A', '1.00', 'USD')`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".parquet")
			q := `COPY (SELECT * FROM (VALUES ` + tc.rows + `) t(merchant_transaction_id, amount, currency)) TO ` + quoteLiteral(p) + ` (FORMAT parquet)`
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
			r := MustOpen(t, "")
			err := r.LoadLedger(context.Background(), p, "")
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "header but no rows")):
				t.Fatalf("err = %v, want a ledger with a header but no rows", err)
			case !tc.wantErr && err != nil:
				t.Fatal(err)
			}
		})
	}
}
