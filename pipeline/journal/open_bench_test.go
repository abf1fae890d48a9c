package journal

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkCreate measures creating a new journal (every migration).
func BenchmarkCreate(b *testing.B) {
	for b.Loop() {
		j, err := OpenDuckDB(context.Background(), filepath.Join(b.TempDir(), "j.duckdb"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		j.Close()
	}
}
