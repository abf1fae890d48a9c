package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/reconcile"
)

// TestReportCSVFromWorkbookRows: with --out (every row in the workbook) the
// CSV files are written in Go from the rows the workbook reads; with --csv
// alone from a read of their own (writers.WriteCSV). Both must be the
// bytes DuckDB's COPY writes (reconcile's ExportCSV, each line built in
// SQL): the golden fixture, and text that needs quoting, neutralising or
// masking in every text column.
func TestReportCSVFromWorkbookRows(t *testing.T) {
	const td = "../../reconcile/testdata/"
	adv := t.TempDir()
	texts := []string{"=1+1", "+SUM(A1)", "-2", "@cmd", "\tTAB", "a,b", `say "hi"`, "line\nbreak", "cr\rx", " lead", "\u00a0nbsp",
		"\u3000ideo", `\.`, "4111 1111 1111 1111", "card 4111-1111-1111-1111 declined", "=4111111111111111", "ünïcödé", "trail ", "1234567890123"}
	var l, p strings.Builder
	l.WriteString("merchant_transaction_id,amount,currency,expected_status\n")
	p.WriteString("merchant_transaction_id,transaction_id,amount,currency,status,reason\n")
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	for i, s := range texts {
		id := s
		if i%2 == 1 {
			id = fmt.Sprintf("ID-%02d", i)
		}
		cur := []string{"USD", "JPY", "KWD"}[i%3]
		amount := []string{fmt.Sprintf("%d.%02d", i, i), fmt.Sprint(i), fmt.Sprintf("%d.%03d", i, i)}[i%3]
		fmt.Fprintf(&l, "%s,%s,%s,%s\n", q(id), amount, cur, []string{"", "done", "declined"}[i%3])
		if i%4 != 3 {
			fmt.Fprintf(&p, "%s,%s,%s,%s,%s,%s\n", q(id), q(s), amount, cur, []string{"APPROVED", "DECLINED"}[i%5/4], q(s))
		}
	}
	fmt.Fprintf(&p, "%s,TX9,-0.07,USD,APPROVED,\n", q("=neg"))
	fmt.Fprintf(&p, "%s,TX10,1.00,USD,APPROVED,\n", q("ID-01")) // a duplicate at the provider
	os.WriteFile(filepath.Join(adv, "ledger.csv"), []byte(l.String()), 0o644)
	os.WriteFile(filepath.Join(adv, "results.csv"), []byte(p.String()), 0o644)
	for _, c := range []struct{ name, ledger, results string }{
		{"fixture", td + "ledger.csv", td + "results.csv"},
		{"adversarial", filepath.Join(adv, "ledger.csv"), filepath.Join(adv, "results.csv")},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir, aloneDir, goDir := filepath.Join(dir, "copy"), filepath.Join(dir, "alone"), filepath.Join(dir, "go")
			args := []string{"reconcile", "--results", c.results, "--ledger", c.ledger}
			if out, errs, code := runCmd(t, append(args, "--csv", aloneDir)...); code != exitExceptions {
				t.Fatalf("--csv: exit %d\n%s\n%s", code, out, errs)
			}
			if out, errs, code := runCmd(t, append(args, "--csv", goDir, "--out", filepath.Join(dir, "report.xlsx"))...); code != exitExceptions {
				t.Fatalf("--csv --out: exit %d\n%s\n%s", code, out, errs)
			}
			copyCSV(t, c.ledger, c.results, copyDir)
			files, _ := filepath.Glob(filepath.Join(copyDir, "*"))
			if len(files) != 12 {
				t.Fatalf("%d files from COPY, want one per category and rejected.csv: %v", len(files), files)
			}
			var rows int
			for _, f := range files {
				want, _ := os.ReadFile(f)
				for _, d := range []struct{ name, dir string }{{"--csv --out (the workbook's rows)", goDir}, {"--csv", aloneDir}} {
					got, err := os.ReadFile(filepath.Join(d.dir, filepath.Base(f)))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s differs:\n--- %s\n%s\n--- COPY\n%s", filepath.Base(f), d.name, got, want)
					}
				}
				rows += bytes.Count(want, []byte("\n")) - 1
			}
			all, _ := os.ReadFile(filepath.Join(goDir, "matched.csv"))
			for _, f := range files[1:] {
				b, _ := os.ReadFile(filepath.Join(goDir, filepath.Base(f)))
				all = append(all, b...)
			}
			if c.name == "adversarial" && (!bytes.Contains(all, []byte("411111******1111")) || !bytes.Contains(all, []byte(`"a,b"`)) || !bytes.Contains(all, []byte("'=1+1"))) {
				t.Errorf("the adversarial text is not masked, quoted and neutralised:\n%s", all)
			}
			if rows < 5 {
				t.Errorf("%d rows in the CSV files; the case has more", rows)
			}
			for _, d := range []string{goDir, aloneDir} {
				if others, _ := filepath.Glob(filepath.Join(d, "*")); len(others) != len(files) {
					t.Errorf("%s: %d files, COPY %d", d, len(others), len(files))
				}
			}
		})
	}
}

// copyCSV writes the CSV exports of ledger against results into dir with
// DuckDB's COPY (reconcile's ExportCSV), as `paybatch reconcile --csv`
// wrote them before it wrote them from the rows: the reference.
func copyCSV(t *testing.T, ledger, results, dir string) {
	t.Helper()
	ctx := context.Background()
	r, err := reconcile.Open(ctx, reconcile.Options{TempDir: t.TempDir(), Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.LoadLedger(ctx, ledger, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadResults(ctx, results, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	none := func(func(paybatch.RowError, error) bool) {}
	if _, err := r.ExportCSV(ctx, dir, none); err != nil {
		t.Fatal(err)
	}
}
