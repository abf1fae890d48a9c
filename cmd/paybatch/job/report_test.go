package job

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/reconcile"
)

// The Parquet export runs while the workbook is written (writeFiles). When
// the workbook fails, the call fails, the export is stopped and waited for,
// no temporary file is left behind, and every file that was put in place
// is named in what writeFiles returns; when both succeed the Parquet files
// are those the export alone writes.
func TestParquetBesideWorkbook(t *testing.T) {
	ctx := context.Background()
	open := func() (*reconcile.Reconciler, paybatch.Summary) {
		r, err := reconcile.Open(ctx, reconcile.Options{TempDir: t.TempDir(), MemoryLimit: "256MB", Rows: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if err := r.LoadLedger(ctx, "../../../reconcile/testdata/ledger.csv", ""); err != nil {
			t.Fatal(err)
		}
		if err := r.LoadResults(ctx, "../../../reconcile/testdata/results.csv", ""); err != nil {
			t.Fatal(err)
		}
		sum, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r, sum
	}
	names := func(dir string) []string {
		es, _ := os.ReadDir(dir)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}

	// alone: the reference files
	r, sum := open()
	ref := filepath.Join(t.TempDir(), "pq")
	if _, err := writeFiles(ctx, r, paybatch.RunInfo{}, sum, nil, Outputs{ParquetDir: ref}); err != nil {
		t.Fatal(err)
	}
	if len(names(ref)) < 3 {
		t.Fatalf("reference export: %v, want a file per category", names(ref))
	}

	// beside a workbook that cannot be written
	r, sum = open()
	dir := t.TempDir()
	pq := filepath.Join(dir, "pq")
	written, err := writeFiles(ctx, r, paybatch.RunInfo{}, sum, nil, Outputs{
		XLSX: filepath.Join(dir, "no such dir", "report.xlsx"), ParquetDir: pq})
	if err == nil {
		t.Fatal("writeFiles succeeded with a workbook in a missing directory")
	}
	for _, n := range names(pq) {
		if strings.Contains(n, ".tmp") {
			t.Errorf("temporary file left behind: %s", n)
		} else if !slices.Contains(written, filepath.Join(pq, n)) {
			t.Errorf("%s was put in place but not named in %v", n, written)
		}
	}

	// beside a workbook that is written: the same files, the same bytes
	r, sum = open()
	pq = filepath.Join(dir, "pq2")
	written, err = writeFiles(ctx, r, paybatch.RunInfo{}, sum, nil, Outputs{XLSX: filepath.Join(dir, "report.xlsx"), ParquetDir: pq})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(pq), names(ref); !slices.Equal(got, want) {
		t.Fatalf("beside the workbook: %v, want %v", got, want)
	}
	for _, n := range names(ref) {
		a, _ := os.ReadFile(filepath.Join(ref, n))
		b, _ := os.ReadFile(filepath.Join(pq, n))
		if string(a) != string(b) {
			t.Errorf("%s differs from the export alone", n)
		}
		if !slices.Contains(written, filepath.Join(pq, n)) {
			t.Errorf("%s not named in %v", n, written)
		}
	}
}
