package journal

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCreate measures a new journal created, opened and closed: from
// the empty journal (createDuckDB), and by its migrations on a DuckDB
// instance of their own, renamed into place, as before session 14
// (migrateNew). cpu-ms/op is the process's CPU (DuckDB's threads
// included).
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		create func(path string) error
	}{
		{"empty", func(string) error { return nil }}, // OpenDuckDB creates it
		{"migrations", func(path string) error {
			if err := migrateNew(ctx, path+".creating", false); err != nil {
				return err
			}
			return os.Rename(path+".creating", path)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cpu0 := processCPU()
			for b.Loop() {
				path := filepath.Join(b.TempDir(), "j.duckdb")
				if err := bc.create(path); err != nil {
					b.Fatal(err)
				}
				j, err := OpenDuckDB(ctx, path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := j.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// processCPU is the process's CPU time so far (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
