package journal_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/journaltest"
)

// TestIDsFromOtherFilesRepeated asks the same question 1,500 times of a
// journal with rows from two files, ingested in chunks of 3 rows (several
// appends, as a journal fed by many files has). Reproduction of a CI
// failure: with count(*) OVER () in the join, DuckDB 1.5.5 answered about
// one call in 200 with an INTERNAL error (and the database was
// invalidated); the old query failed here after 86, 87 and 391 calls.
func TestIDsFromOtherFilesRepeated(t *testing.T) {
	ctx := context.Background()
	j, err := journal.OpenDuckDB(ctx, filepath.Join(t.TempDir(), "ids.duckdb"), journal.Options{PageRows: 7, ChunkRows: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var rows []*journal.Row
	for i := range 6 {
		r := journaltest.Row(i, int64(100+i))
		if i >= 4 {
			r.Source.File = "old.csv"
		}
		rows = append(rows, r)
	}
	if _, err := j.Ingest(ctx, journaltest.Seq(rows...), time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for k := range 1500 {
		first, n, err := j.IDsFromOtherFiles(ctx, "old.csv", slices.Values([]string{"rf-00004", "rf-00001"}), 5)
		if err != nil {
			t.Fatalf("call %d: %v", k+1, err)
		}
		if n != 1 || len(first) != 1 || first[0] != "rf-00001" {
			t.Fatalf("call %d: %v, %d", k+1, first, n)
		}
	}
}
