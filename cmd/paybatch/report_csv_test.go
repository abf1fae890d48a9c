package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestReportCSVFromWorkbookRows: with --out (every row in the workbook) the
// CSV files are written in Go from the rows the workbook reads; with --csv
// alone from a read of their own (writers.WriteCSV). Both must be the
// bytes DuckDB's COPY writes (each line built in SQL: reconcile's tests'
// ExportCSV), kept in reconcile/testdata/csvcopy/<case>/want and checked
// against COPY there (reconcile's TestCSVCopyGolden): the golden fixture,
// and text that needs quoting, neutralising or masking in every text
// column (reconcile/testdata/csvcopy/adversarial).
func TestReportCSVFromWorkbookRows(t *testing.T) {
	// in reconcile's folder, the inputs named as its test names them (a
	// line's source_file is the path as given)
	t.Chdir("../../reconcile")
	for _, c := range []struct{ name, ledger, results string }{
		{"fixture", "testdata/ledger.csv", "testdata/results.csv"},
		{"adversarial", "testdata/csvcopy/adversarial/ledger.csv", "testdata/csvcopy/adversarial/results.csv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			aloneDir, goDir := filepath.Join(dir, "alone"), filepath.Join(dir, "go")
			args := []string{"reconcile", "--results", c.results, "--ledger", c.ledger}
			if out, errs, code := runCmd(t, append(args, "--csv", aloneDir)...); code != exitExceptions {
				t.Fatalf("--csv: exit %d\n%s\n%s", code, out, errs)
			}
			if out, errs, code := runCmd(t, append(args, "--csv", goDir, "--out", filepath.Join(dir, "report.xlsx"))...); code != exitExceptions {
				t.Fatalf("--csv --out: exit %d\n%s\n%s", code, out, errs)
			}
			files, _ := filepath.Glob(filepath.Join("testdata", "csvcopy", c.name, "want", "*"))
			if len(files) != 12 {
				t.Fatalf("%d files of COPY's, want one per category and rejected.csv: %v", len(files), files)
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
