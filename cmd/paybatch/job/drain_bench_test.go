package job

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/reconcile"
)

// BenchmarkReportDrain is the full report's work after Run (#19): the
// writeFiles of `paybatch reconcile --out --csv --parquet --json` — the
// rows read from recon_sorted, the workbook and the CSV lines written from
// them, the Parquet export beside them, the JSON — in process, after one
// Run of the inputs in $PAYBATCH_DRAIN_DIR (ledger.csv and results.csv:
// BenchmarkFullReport1M's, e.g. its $PAYBATCH_BENCH_DIR); skipped without
// it. cpu-s/op is the process's CPU per drain (every thread: DuckDB's
// too). $PAYBATCH_DRAIN_ONLY measures a part alone: rows (Rows read to
// the end, nothing written), xlsx, xlsxcsv (the workbook with the CSV
// lines), csv (DuckDB's COPY: --csv alone), parquet.
//
//	go test -c -o /tmp/job.test ./cmd/paybatch/job
//	PAYBATCH_DRAIN_DIR=/tmp/rbin /tmp/job.test -test.run '^$' -test.bench ReportDrain -test.benchtime 4x
func BenchmarkReportDrain(b *testing.B) {
	in := os.Getenv("PAYBATCH_DRAIN_DIR")
	if in == "" {
		b.Skip("PAYBATCH_DRAIN_DIR (a directory with ledger.csv and results.csv) not set")
	}
	ctx := context.Background()
	r, err := reconcile.Open(ctx, reconcile.Options{MemoryLimit: "1GB", Rows: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if err := r.LoadLedger(ctx, filepath.Join(in, "ledger.csv"), ""); err != nil {
		b.Fatal(err)
	}
	if err := r.LoadResults(ctx, filepath.Join(in, "results.csv"), ""); err != nil {
		b.Fatal(err)
	}
	sum, err := r.Run(ctx)
	if err != nil {
		b.Fatal(err)
	}
	only := os.Getenv("PAYBATCH_DRAIN_ONLY")
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var spent time.Duration
	n := 0
	for b.Loop() {
		c0 := cpu()
		out := b.TempDir()
		o := Outputs{XLSX: filepath.Join(out, "report.xlsx"), CSVDir: filepath.Join(out, "csv"),
			ParquetDir: filepath.Join(out, "parquet"), JSON: filepath.Join(out, "summary.json")}
		switch only {
		case "", "rows":
		case "xlsx":
			o = Outputs{XLSX: o.XLSX}
		case "xlsxcsv":
			o = Outputs{XLSX: o.XLSX, CSVDir: o.CSVDir}
		case "csv":
			o = Outputs{CSVDir: o.CSVDir}
		case "parquet":
			o = Outputs{ParquetDir: o.ParquetDir}
		default:
			b.Fatalf("PAYBATCH_DRAIN_ONLY=%q: want rows, xlsx, xlsxcsv, csv or parquet", only)
		}
		if only == "rows" {
			for _, err := range r.Rows(ctx) {
				if err != nil {
					b.Fatal(err)
				}
			}
		} else if _, err := writeFiles(ctx, r, paybatch.RunInfo{}, sum, nil, o); err != nil {
			b.Fatal(err)
		}
		spent += cpu() - c0
		n++
	}
	b.ReportMetric(spent.Seconds()/float64(n), "cpu-s/op")
}
