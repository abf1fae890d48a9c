package journal_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/journaltest"
)

func TestDuckDBConformance(t *testing.T) {
	dir := t.TempDir()
	journaltest.Run(t, func(tb testing.TB, name string) journal.Journal {
		j, err := journal.OpenDuckDB(context.Background(), filepath.Join(dir, name+".duckdb"), journal.Options{PageRows: 7, ChunkRows: 3})
		if err != nil {
			tb.Fatal(err)
		}
		return j
	})
}
