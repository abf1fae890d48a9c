package reconcile

import (
	"context"
	"path/filepath"
	"testing"
)

// Reports must stay within the memory limit, spilling rather than failing.
// Rows once ran one ORDER BY query over every row, which DuckDB's Go driver
// materialises whole (out of memory at 1M ids under 1 GB); then the query
// that wrote the sorted rows held its two hash joins and its sort at once
// (out of memory at 300k ids under 320 MB). 300k ids per side under 256 MB
// (DuckDB gets 141 MB) must go through Rows and the Parquet export; 1M ids
// fit 256 MB the same way (about 10 s, too slow for the suite).
func TestRowsWithinMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 300k-line files")
	}
	const n = 300_000
	dir := t.TempDir()
	ledger, results := genBenchInputs(t, dir, n, "parquet")
	ctx := context.Background()
	r, err := Open(ctx, Options{MemoryLimit: "256MB", TempDir: filepath.Join(dir, "spill")})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sum := loadRun(t, r, ledger, "", results, false)
	var ids int64
	for _, c := range sum.Categories {
		ids += c.Count
	}
	rows := 0
	for _, err := range r.Rows(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		rows++
	}
	if int64(rows) != ids || ids < n {
		t.Fatalf("Rows gave %d rows for %d ids", rows, ids)
	}
	if _, err := r.ExportParquet(ctx, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
}
