package writers

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"context"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"github.com/paybatch/paybatch"
	"github.com/xuri/excelize/v2"
)

// benchRows is the 1,000,000-row report of the benchmarks: 2% exceptions,
// 98% matched, amounts in USD, JPY and KWD. Rows are generated on the fly
// (as package reconcile streams them from DuckDB), never held in memory.
const (
	benchRows       = 1_000_000
	benchExceptions = benchRows / 50
)

var benchCurrencies = []paybatch.Currency{paybatch.MustCurrency("USD"), paybatch.MustCurrency("JPY"), paybatch.MustCurrency("KWD")}

func benchRow(i int, cat paybatch.Category) paybatch.ReconRow {
	cur := benchCurrencies[i%3]
	la := paybatch.Money{Currency: cur, Minor: int64(i%100_000)*37 + 1}
	pa := la
	r := paybatch.ReconRow{
		Category: cat, MerchantTxID: "ORD-" + strconv.Itoa(1_000_000+i),
		LedgerAmount: &la, LedgerStatus: "done", ProviderAmount: &pa, ProviderStatus: "approved",
		ProviderID: "tx_" + strconv.Itoa(7_000_000+i),
		Source:     paybatch.Source{File: "refunds-2026-11-21.xlsx", Sheet: "Batch", Row: i + 2},
	}
	if cat != paybatch.CatMatched {
		pa.Minor += 100
		r.Reason = "amount differs by " + paybatch.Money{Currency: cur, Minor: 100}.String()
	}
	return r
}

func benchSeq(from, to int, cat paybatch.Category) iter.Seq2[paybatch.ReconRow, error] {
	return func(yield func(paybatch.ReconRow, error) bool) {
		for i := from; i < to; i++ {
			if !yield(benchRow(i, cat), nil) {
				return
			}
		}
	}
}

func benchReport() Report {
	sum := paybatch.Summary{Categories: map[paybatch.Category]paybatch.CategoryTotals{
		paybatch.CatAmountMismatch: {Count: benchExceptions},
		paybatch.CatMatched:        {Count: benchRows - benchExceptions},
	}, MatchRate: 0.98}
	return Report{
		Run:        paybatch.RunInfo{Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Version: "bench"},
		Summary:    sum,
		Exceptions: benchSeq(0, benchExceptions, paybatch.CatAmountMismatch),
		Matched:    benchSeq(benchExceptions, benchRows, paybatch.CatMatched),
	}
}

// peakRSS reports the process's peak resident set size (VmHWM) in MB. Run
// each benchmark in its own `go test` process so the figure is its own.
func peakRSS(b *testing.B) {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(s), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			b.ReportMetric(kb/1024, "peakRSS-MB")
		}
	}
}

// cpuTime is the process's user+system CPU time so far. On a shared,
// loaded machine wall time swings ±50% with other work; CPU time is the
// steadier comparison.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
}

func reportFileSize(b *testing.B, path string) {
	if st, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(st.Size())/(1<<20), "file-MB")
	}
}

// BenchmarkWriteXLSX1M writes the 1,000,000-row report with WriteXLSX.
//
//	go test ./writers -run '^$' -bench 'WriteXLSX1M$' -benchtime 1x
func BenchmarkWriteXLSX1M(b *testing.B) {
	dir := b.TempDir()
	start := cpuTime()
	for b.Loop() {
		path := filepath.Join(dir, "report.xlsx")
		if err := WriteXLSX(context.Background(), path, benchReport(), XLSXOptions{}); err != nil {
			b.Fatal(err)
		}
		reportFileSize(b, path)
	}
	reportCPU(b, start)
	peakRSS(b)
}

// BenchmarkRawStreamWriter1M is the baseline: excelize's StreamWriter
// writing the same cells (same values, amount formats, two sheets) with no
// neutralisation, masking, summary, chart, autofilter, panes, widths or
// atomic rename.
//
//	go test ./writers -run '^$' -bench 'RawStreamWriter1M$' -benchtime 1x
func BenchmarkRawStreamWriter1M(b *testing.B) {
	dir := b.TempDir()
	start := cpuTime()
	for b.Loop() {
		f := excelize.NewFile()
		styles := map[int]int{}
		for _, exp := range []int{0, 2, 3} {
			nf := amountFormat(exp)
			id, err := f.NewStyle(&excelize.Style{CustomNumFmt: &nf})
			if err != nil {
				b.Fatal(err)
			}
			styles[exp] = id
		}
		hdr := make([]any, len(ReconColumns))
		for i, h := range ReconColumns {
			hdr[i] = h
		}
		vals := make([]any, len(ReconColumns))
		for _, part := range []struct {
			name     string
			from, to int
			cat      paybatch.Category
		}{{"Exceptions", 0, benchExceptions, paybatch.CatAmountMismatch}, {"Matched", benchExceptions, benchRows, paybatch.CatMatched}} {
			if _, err := f.NewSheet(part.name); err != nil {
				b.Fatal(err)
			}
			sw, err := f.NewStreamWriter(part.name)
			if err != nil {
				b.Fatal(err)
			}
			if err := sw.SetRow("A1", hdr); err != nil {
				b.Fatal(err)
			}
			row := 1
			for r := range benchSeq(part.from, part.to, part.cat) {
				row++
				amt := func(m *paybatch.Money) any {
					v, _ := strconv.ParseFloat(m.String(), 64)
					return excelize.Cell{StyleID: styles[m.Currency.Exponent()], Value: v}
				}
				vals[0], vals[1] = string(r.Category), r.MerchantTxID
				vals[2], vals[3], vals[4] = amt(r.LedgerAmount), r.LedgerAmount.Currency.Code(), r.LedgerStatus
				vals[5], vals[6], vals[7] = amt(r.ProviderAmount), r.ProviderAmount.Currency.Code(), r.ProviderStatus
				vals[8], vals[9], vals[10], vals[11], vals[12] = r.ProviderID, nilIfEmpty(r.Reason), r.Source.File, r.Source.Sheet, r.Source.Row
				cell, _ := excelize.CoordinatesToCellName(1, row)
				if err := sw.SetRow(cell, vals); err != nil {
					b.Fatal(err)
				}
			}
			if err := sw.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		// Same output path as WriteXLSX minus the rename: WriteTo through a
		// 256 KiB buffer into the file.
		path := filepath.Join(dir, "raw.xlsx")
		out, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(out, 256<<10)
		if _, err := f.WriteTo(bw); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
		reportFileSize(b, path)
		_ = f.Close()
	}
	reportCPU(b, start)
	peakRSS(b)
}

// nilIfEmpty leaves an empty cell out, as WriteXLSX does.
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// BenchmarkXLSX1M writes the same 1,000,000-row report (every row in the
// workbook) with the lean writer and with excelize's StreamWriter (the
// reference, XLSXOptions.ExcelizeStream) side by side in one run, and
// measures the floor under the lean writer: deflating its own sheet XML at
// its level (klauspost/compress level 1), beside the standard library's
// compress/flate at level 1 and 6.
//
//	go test ./writers -run '^$' -bench 'XLSX1M$' -benchtime 1x
func BenchmarkXLSX1M(b *testing.B) {
	dir := b.TempDir()
	for _, c := range []struct {
		name string
		opts XLSXOptions
	}{{"lean", XLSXOptions{}}, {"excelize-stream", XLSXOptions{ExcelizeStream: true}}} {
		b.Run(c.name, func(b *testing.B) {
			start := cpuTime()
			path := filepath.Join(dir, c.name+".xlsx")
			for b.Loop() {
				if err := WriteXLSX(context.Background(), path, benchReport(), c.opts); err != nil {
					b.Fatal(err)
				}
			}
			reportFileSize(b, path)
			reportCPU(b, start)
		})
	}
	// The sheet XML of the lean workbook, uncompressed, in one file.
	xmlPath := filepath.Join(dir, "sheets.xml")
	out, err := os.Create(xmlPath)
	if err != nil {
		b.Fatal(err)
	}
	zr, err := zip.OpenReader(filepath.Join(dir, "lean.xlsx"))
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range zr.File {
		if strings.HasPrefix(f.Name, "xl/worksheets/") {
			rc, _ := f.Open()
			if _, err := io.Copy(out, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	}
	zr.Close()
	out.Close()
	for _, c := range []struct {
		name string
		new  func(io.Writer) (io.WriteCloser, error)
	}{
		{"deflate-sheet-xml/klauspost-1", func(w io.Writer) (io.WriteCloser, error) { return kflate.NewWriter(w, xlsxDeflateLevel) }},
		{"deflate-sheet-xml/stdlib-1", func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, 1) }},
		{"deflate-sheet-xml/stdlib-6", func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, 6) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			start := cpuTime()
			for b.Loop() {
				in, err := os.Open(xmlPath)
				if err != nil {
					b.Fatal(err)
				}
				var n countWriter
				zw, _ := c.new(&n)
				size, err := io.Copy(zw, in)
				if err != nil {
					b.Fatal(err)
				}
				zw.Close()
				in.Close()
				b.ReportMetric(float64(size)/(1<<20), "xml-MB")
				b.ReportMetric(float64(n)/(1<<20), "deflated-MB")
			}
			reportCPU(b, start)
		})
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
