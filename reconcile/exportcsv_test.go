package reconcile

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/writers"
)

// ExportCSV writes the per-category CSV exports into dir with DuckDB's
// COPY, each line built in SQL (testdata/export_csv_lines.sql and its
// macros, testdata/export_csv_macros.sql; one COPY a category,
// testdata/export_csv.sql; the rows never cross into Go): the
// reference the CSV lines written in Go (writers.WriteCSV,
// writers.CSVExport) are checked against byte for byte. It was the
// product's --csv path until the Go lines, a quarter of its CPU at 1M ids,
// replaced it (#19, BENCHMARKS.md, session 8).
//
// "<category>.csv" for every category, in paybatch.Categories order
// (header only when empty), and, when rejected is not nil,
// writers.RejectedCSV (written by writers.WriteCSV, as before). It returns
// the paths written.
func (r *Reconciler) ExportCSV(ctx context.Context, dir string, rejected iter.Seq2[paybatch.RowError, error]) ([]string, error) {
	ranges, err := r.ensureBuilt(ctx)
	if err != nil {
		return nil, err
	}
	macros, err := os.ReadFile("testdata/export_csv_macros.sql")
	if err != nil {
		return nil, err
	}
	lines, err := os.ReadFile("testdata/export_csv_lines.sql")
	if err != nil {
		return nil, err
	}
	export, err := os.ReadFile("testdata/export_csv.sql")
	if err != nil {
		return nil, err
	}
	// writers' export of no rows: every category's file (its header) and
	// rejected.csv, in place; COPY then writes each category's file over
	// its own (DuckDB keeps the file's mode)
	paths, err := writers.WriteCSV(ctx, dir, writers.Report{Rejected: rejected})
	if err != nil {
		return nil, err
	}
	release, err := r.oneThread(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	byCat := map[paybatch.Category]catRange{}
	for _, cr := range ranges {
		byCat[cr.cat] = cr
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, string(macros)); err != nil {
		return nil, fmt.Errorf("testdata/export_csv_macros.sql: %w", err)
	}
	if _, err := conn.ExecContext(ctx, string(lines)); err != nil {
		return nil, fmt.Errorf("testdata/export_csv_lines.sql: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS export_csv_lines`)
	for i, c := range paybatch.Categories {
		cr, ok := byCat[c]
		if !ok {
			cr = catRange{cat: c, first: 1, last: 0} // header only
		}
		if _, err := conn.ExecContext(ctx, string(export),
			sql.Named("first", cr.first), sql.Named("last", cr.last), sql.Named("path", paths[i])); err != nil {
			return nil, fmt.Errorf("csv export %s: %w", paths[i], err)
		}
	}
	return paths, nil
}

// TestCSVCopyGolden: the CSV exports COPY writes (ExportCSV) for the
// fixture and for testdata/csvcopy/adversarial (text that needs quoting,
// neutralising or masking in every text column; a duplicate at the
// provider) are the files kept in testdata/csvcopy/<case>/want (-update
// rewrites them). cmd/paybatch's TestReportCSVFromWorkbookRows checks the
// files the CLI writes in Go against those same files: byte for byte
// COPY's, without the CLI's tests reaching into this package.
func TestCSVCopyGolden(t *testing.T) {
	for _, c := range []struct{ name, ledger, results string }{
		{"fixture", "testdata/ledger.csv", "testdata/results.csv"},
		{"adversarial", "testdata/csvcopy/adversarial/ledger.csv", "testdata/csvcopy/adversarial/results.csv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := runFiles(t, c.ledger, c.results)
			none := func(func(paybatch.RowError, error) bool) {}
			paths, err := r.ExportCSV(context.Background(), t.TempDir(), none)
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join("testdata", "csvcopy", c.name, "want")
			if *update {
				if err := os.RemoveAll(want); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(want, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range paths {
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				w := filepath.Join(want, filepath.Base(p))
				if *update {
					if err := os.WriteFile(w, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if b, err := os.ReadFile(w); err != nil || !bytes.Equal(got, b) {
					t.Errorf("%s: COPY wrote\n%s\nwant (%v)\n%s\n(go test ./reconcile -run TestCSVCopyGolden -update rewrites it)", w, got, err, b)
				}
			}
			if kept, _ := filepath.Glob(filepath.Join(want, "*")); len(kept) != len(paths) {
				t.Errorf("%s holds %d files, COPY wrote %d", want, len(kept), len(paths))
			}
		})
	}
}
