package readers

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

// Benchmarks read a generated refund batch of PAYBATCH_BENCH_ROWS rows
// (default 1,000,000) × 8 columns. The files are cached in
// $TMPDIR/paybatch-bench keyed by size, so only the first run pays for
// generating them. Each benchmark reports rows/s and the process's peak RSS
// during the measured read (VmHWM, reset before it through
// /proc/self/clear_refs). Run one at a time for clean peaks:
//
//	go test ./readers -run '^$' -bench 'CSV|XLSX' -benchtime 1x
func benchRows() int {
	if s := os.Getenv("PAYBATCH_BENCH_ROWS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 1_000_000
}

var benchHeader = []string{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency", "customer", "notes"}

func benchRow(i int) (terminal, tx, order, id string, amountCents int, cur, customer, notes string) {
	return "TERM01", fmt.Sprintf("TX%06d", i%1000000), fmt.Sprintf("OR%06d", i%1000000),
		fmt.Sprintf("refund-2026-%08d", i), 100 + i%99900, "USD", fmt.Sprintf("CUST%07d", i%50000), "monthly refund run"
}

func benchDir(b *testing.B) string {
	dir := filepath.Join(os.TempDir(), "paybatch-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

func benchCSV(b *testing.B, rows int) string {
	p := filepath.Join(benchDir(b), fmt.Sprintf("refund-%d.csv", rows))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(strings.Join(benchHeader, ",") + "\r\n")
	for i := range rows {
		t, tx, o, id, c, cur, cu, n := benchRow(i)
		fmt.Fprintf(w, "%s,%s,%s,%s,%d.%02d,%s,%s,%s\r\n", t, tx, o, id, c/100, c%100, cur, cu, n)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := os.Rename(tmp, p); err != nil {
		b.Fatal(err)
	}
	return p
}

func benchXLSX(b *testing.B, rows int) string {
	p := filepath.Join(benchDir(b), fmt.Sprintf("refund-%d.xlsx", rows))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		b.Fatal(err)
	}
	hdr := make([]any, len(benchHeader))
	for i, h := range benchHeader {
		hdr[i] = h
	}
	if err := sw.SetRow("A1", hdr); err != nil {
		b.Fatal(err)
	}
	row := make([]any, len(benchHeader))
	for i := range rows {
		t, tx, o, id, c, cur, cu, n := benchRow(i)
		row[0], row[1], row[2], row[3] = t, tx, o, id
		row[4] = float64(c) / 100 // a numeric cell, as a spreadsheet holds it
		row[5], row[6], row[7] = cur, cu, n
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(cell, row); err != nil {
			b.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.SaveAs(p + ".tmp.xlsx"); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := os.Rename(p+".tmp.xlsx", p); err != nil {
		b.Fatal(err)
	}
	return p
}

// peak measures the high-water mark of resident memory during fn.
func peak(b *testing.B, fn func()) {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset VmHWM: %v (peak includes setup)", err)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	fn()
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
	// CPU time (all threads) is the load-independent cost on a shared machine.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			b.ReportMetric(float64(kb)/1024, "peakRSS-MB")
		}
	}
}

func reportRows(b *testing.B, rows int, start time.Time) {
	b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "rows/s")
}

// BenchmarkCSVRaw is the baseline: plain encoding/csv reading every record.
func BenchmarkCSVRaw(b *testing.B) { benchCSVRaw(b, false) }

// BenchmarkCSVRawSHA256 is the baseline with the file's SHA-256 computed
// from the same bytes (io.TeeReader), which Validate must do and
// BenchmarkCSVRaw does not: the floor for a validation that hashes.
func BenchmarkCSVRawSHA256(b *testing.B) { benchCSVRaw(b, true) }

func benchCSVRaw(b *testing.B, hash bool) {
	rows := benchRows()
	p := benchCSV(b, rows)
	start := time.Now()
	peak(b, func() {
		start = time.Now()
		for range b.N {
			f, _ := os.Open(p)
			var in io.Reader = f
			h := sha256.New()
			if hash {
				in = io.TeeReader(f, h)
			}
			r := csv.NewReader(bufio.NewReaderSize(in, 64<<10))
			r.ReuseRecord = true
			n := 0
			for {
				_, err := r.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			f.Close()
			if n != rows+1 {
				b.Fatalf("read %d records", n)
			}
			if hash && len(h.Sum(nil)) != sha256.Size {
				b.Fatal("no hash")
			}
		}
	})
	reportRows(b, rows, start)
}

// BenchmarkCSVAll streams the batch through Open + All (parse and validate
// every row, no duplicate map).
func BenchmarkCSVAll(b *testing.B) { benchAll(b, benchCSV(b, benchRows())) }

// BenchmarkCSVValidate is the full verdict: All plus duplicate detection,
// totals and the file's SHA-256.
func BenchmarkCSVValidate(b *testing.B) { benchValidate(b, benchCSV(b, benchRows())) }

// BenchmarkXLSXExcelizeRaw is the baseline: excelize Rows() with
// RawCellValue, every row's Columns().
func BenchmarkXLSXExcelizeRaw(b *testing.B) {
	rows := benchRows()
	p := benchXLSX(b, rows)
	start := time.Now()
	peak(b, func() {
		start = time.Now()
		for range b.N {
			f, err := excelize.OpenFile(p, excelize.Options{RawCellValue: true})
			if err != nil {
				b.Fatal(err)
			}
			rs, err := f.Rows("Sheet1")
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rs.Next() {
				if _, err := rs.Columns(excelize.Options{RawCellValue: true}); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rs.Close()
			f.Close()
			if n != rows+1 {
				b.Fatalf("read %d rows", n)
			}
		}
	})
	reportRows(b, rows, start)
}

func BenchmarkXLSXAll(b *testing.B)      { benchAll(b, benchXLSX(b, benchRows())) }
func BenchmarkXLSXValidate(b *testing.B) { benchValidate(b, benchXLSX(b, benchRows())) }

func benchAll(b *testing.B, p string) {
	rows := benchRows()
	o := opts(paybatch.KindRefund)
	start := time.Now()
	peak(b, func() {
		start = time.Now()
		for range b.N {
			bt, err := openPath(b, p, o)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, err := range bt.All(context.Background()) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			bt.Close()
			if n != rows {
				b.Fatalf("%d valid rows", n)
			}
		}
	})
	reportRows(b, rows, start)
}

func benchValidate(b *testing.B, p string) {
	rows := benchRows()
	o := opts(paybatch.KindRefund)
	start := time.Now()
	peak(b, func() {
		start = time.Now()
		for range b.N {
			rep, err := Validate(context.Background(), []string{p}, o)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Valid != rows {
				b.Fatalf("valid %d of %d: %v", rep.Valid, rows, rep.Rejects[:min(3, len(rep.Rejects))])
			}
		}
	})
	reportRows(b, rows, start)
}

// BenchmarkXLSXInflate is the floor for any XLSX reader: decompressing the
// sheet XML and discarding it.
func BenchmarkXLSXInflate(b *testing.B) {
	rows := benchRows()
	p := benchXLSX(b, rows)
	start := time.Now()
	peak(b, func() {
		start = time.Now()
		for range b.N {
			zr, err := zip.OpenReader(p)
			if err != nil {
				b.Fatal(err)
			}
			for _, zf := range zr.File {
				if zf.Name == "xl/worksheets/sheet1.xml" {
					rc, _ := zf.Open()
					io.Copy(io.Discard, rc)
					rc.Close()
				}
			}
			zr.Close()
		}
	})
	reportRows(b, rows, start)
}

// BenchmarkCSVSource is the reader's own tokenizer (csvSource: the
// byte-level path, sniffing, blank-row skipping) reading every record, no
// validation: to set beside BenchmarkCSVRaw.
func BenchmarkCSVSource(b *testing.B) {
	rows := benchRows()
	p := benchCSV(b, rows)
	start := time.Now()
	peak(b, func() {
		start = time.Now()
		for range b.N {
			f, _ := os.Open(p)
			s, err := openCSV(f, p)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				_, _, err := s.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			f.Close()
			if n != rows+1 {
				b.Fatalf("read %d records", n)
			}
		}
	})
	reportRows(b, rows, start)
}
