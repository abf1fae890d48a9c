package reconcile

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2GB", 2e9, true}, {"512MB", 512e6, true}, {"1GiB", 1 << 30, true}, {" 1.5 gb ", 1.5e9, true},
		{"100000000", 1e8, true}, {"", 0, false}, {"lots", 0, false}, {"-1GB", 0, false}, {"1MB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

// DuckDB gets 55% of the configured limit.
func TestMemoryLimitApplied(t *testing.T) {
	r, err := Open(context.Background(), Options{MemoryLimit: "1GB", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got string
	if err := r.db.QueryRow(`SELECT current_setting('memory_limit')`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "524") { // 550MB = 524.5 MiB
		t.Fatalf("memory_limit = %q, want 550MB", got)
	}
	if _, err := Open(context.Background(), Options{MemoryLimit: "lots"}); err == nil {
		t.Fatal("bad memory limit accepted")
	}
}

// DuckDB's limit while the report's rows are read back: 30% of the
// configured limit, never below 128MB nor above DuckDB's 55%.
func TestDuckDBLimits(t *testing.T) {
	for _, tc := range []struct {
		in         string
		full, read int64
	}{
		{"1GB", 550e6, 300e6}, {"2GB", 1100e6, 600e6}, {"256MB", 140e6, 128e6}, {"100MB", 55e6, 55e6},
	} {
		full, read, err := duckdbLimits(tc.in)
		if err != nil || full != tc.full || read != tc.read {
			t.Errorf("duckdbLimits(%q) = %d, %d, %v; want %d, %d", tc.in, full, read, err, tc.full, tc.read)
		}
	}
}

// While Rows or ExportParquet read recon_sorted, DuckDB's memory_limit is
// the read share; side by side (the workbook beside the Parquet export) it
// stays narrowed until the last of them ends, and Run leaves the full
// share behind it (the rows pass narrows it only for its scans after the
// table is written). At 10M ids per side under 1GB this is what keeps the
// drain's RSS from DuckDB's whole limit plus the pages its evictions free
// (BENCHMARKS.md #19, session 10).
func TestReadingMemoryNarrowsLimit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ledger, results := genBenchInputs(t, dir, 2000, "csv")
	r, err := Open(ctx, Options{MemoryLimit: "1GB", TempDir: t.TempDir(), Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	limit := func() string {
		t.Helper()
		var got string
		if err := r.db.QueryRowContext(ctx, `SELECT current_setting('memory_limit')`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	const full, read = "524.5 MiB", "286.1 MiB" // 550MB, 300MB
	loadRun(t, r, ledger, "", results, false)
	if r.passRoad == "" {
		t.Fatal("Run did not take the rows pass")
	}
	if got := limit(); got != full {
		t.Fatalf("after Run: memory_limit %s, want %s", got, full)
	}
	if r.reads.narrowed != 1 {
		t.Fatalf("the rows pass narrowed the limit %d times, want once (its scans after the table)", r.reads.narrowed)
	}
	rows := 0
	for _, err := range r.Rows(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if rows++; rows > 1 {
			continue
		}
		if got := limit(); got != read {
			t.Fatalf("while Rows reads: memory_limit %s, want %s", got, read)
		}
		if _, err := r.ExportParquet(ctx, filepath.Join(dir, "parquet")); err != nil {
			t.Fatal(err)
		}
		if got := limit(); got != read {
			t.Fatalf("after ExportParquet, Rows still reading: memory_limit %s, want %s", got, read)
		}
	}
	if rows < 2000 {
		t.Fatalf("Rows gave %d rows", rows)
	}
	if got := limit(); got != full {
		t.Fatalf("after Rows: memory_limit %s, want %s", got, full)
	}
	if r.reads.narrowed != 2 {
		t.Fatalf("narrowed %d times, want twice (the pass; Rows with ExportParquet beside it)", r.reads.narrowed)
	}
	// a small limit keeps its whole share
	small, err := Open(ctx, Options{MemoryLimit: "200MB", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	release := small.readingMemory(ctx)
	defer release()
	var got string
	if err := small.db.QueryRowContext(ctx, `SELECT current_setting('memory_limit')`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "104.9 MiB" { // 110MB
		t.Fatalf("200MB while reading: memory_limit %s, want 104.9 MiB", got)
	}
}
