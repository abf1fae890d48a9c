package readers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

// showReport renders everything a Report says, for comparing two reads.
func showReport(r *Report) string {
	var s strings.Builder
	fmt.Fprintf(&s, "rows %d valid %d rejected %d totals %v counts %v files %v unknown %v\n", r.Rows, r.Valid, r.Rejected, r.Totals.Strings(), r.Counts, r.Files, r.Unknown)
	for _, e := range r.Rejects {
		fmt.Fprintf(&s, "%v|%q|%q|%q\n", e.Source, e.Column, e.Value, e.MerchantTxID)
		s.WriteString(e.Error() + "\n")
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&s, "%v %q %q %s\n", w.Sources, w.Column, w.Values, w.Message)
	}
	return s.String()
}

// validateEach is Validate of data with Each set, read as ahead and block
// say: every instruction Each was given, in order, then the report or the
// error. With failAt > 0, Each fails on its failAt-th row.
func validateEach(t testing.TB, data []byte, o Options, ahead aheadMode, block, failAt int) string {
	t.Helper()
	var out strings.Builder
	n := 0
	o.ahead, o.csvBlock = ahead, block
	var rows []eachRow
	o.Each = func(in paybatch.Instruction, at Position) error {
		n++
		fmt.Fprintf(&out, "each %+v at %+v\n", in, at)
		rows = append(rows, eachRow{fmt.Sprintf("%+v", in), at})
		if n == failAt {
			return fmt.Errorf("hook failed at row %d", in.Source.Row)
		}
		return nil
	}
	rep, err := ValidateInputs(context.Background(), []Input{{Name: "f.csv", R: bytes.NewReader(data), Size: int64(len(data))}}, o)
	if failAt == 0 {
		checkOpenAt(t, data, o, rows, err)
	}
	if err != nil {
		fmt.Fprintf(&out, "error: %v\n", err)
		return out.String()
	}
	out.WriteString(showReport(rep))
	return out.String()
}

// eachRow is a row Validate gave Each, and where it said the row starts.
type eachRow struct {
	in string // the instruction, %+v
	at Position
}

// checkOpenAt fails unless reading data again from the position of a row
// Each was given (OpenAt, Batch.All) yields that row and then the rows
// Each was given after it, in order — the same instructions — and ends
// where Validate ended (the same error, vErr, when the file had one). Rows
// of a text without positions (UTF-16) must have none. A sample of the
// rows is tried: all of a short file, every 37th of a long one.
func checkOpenAt(t testing.TB, data []byte, o Options, rows []eachRow, vErr error) {
	t.Helper()
	o.Each = nil
	for i := 0; i < len(rows); i++ {
		if len(rows) > 60 && i%37 != 0 && i != len(rows)-1 {
			continue
		}
		at := rows[i].at
		b, err := OpenAt(bytes.NewReader(data), int64(len(data)), "f.csv", o, at)
		if !at.Valid() {
			if err == nil {
				b.Close()
				t.Fatalf("row %d (%s) has no position, yet OpenAt opened it", i, rows[i].in)
			}
			continue
		}
		if err != nil {
			t.Fatalf("OpenAt(%+v) for %s: %v", at, rows[i].in, err)
		}
		j := i
		var end error
		whole := true // read to the end (not cut at 150 rows)
		for in, err := range b.All(context.Background()) {
			var re *paybatch.RowError
			if errors.As(err, &re) {
				continue
			}
			if err != nil {
				end = err
				break
			}
			if j >= len(rows) {
				t.Fatalf("from %+v: row %+v after the last row Validate gave Each", at, in)
			}
			if got := fmt.Sprintf("%+v", in); got != rows[j].in {
				t.Fatalf("from %+v (row %d of Each): row %d is\n%s\nValidate gave Each\n%s", at, i, j, got, rows[j].in)
			}
			j++
			if j-i > 150 {
				whole = false // far enough (the rows near the end are tried too)
				break
			}
		}
		b.Close()
		if whole {
			if j != len(rows) {
				t.Fatalf("from %+v: %d rows, Validate gave Each %d after it (end: %v)", at, j-i, len(rows)-i, end)
			}
			if fmt.Sprint(end) != fmt.Sprint(vErr) {
				t.Fatalf("from %+v: the read ended with %v, Validate with %v", at, end, vErr)
			}
		}
	}
}

// checkEachPaths fails when Validate with Each reads data differently on
// its two-core path — whatever batches the read-ahead parses, at block
// sizes from tiny to the default — than on the one-core path: a row given
// to Each, its order, a reject, the report, or an error (the file's or
// Each's own, which stops the read at the same row).
func checkEachPaths(t testing.TB, data []byte, o Options, blocks []int) {
	t.Helper()
	want := validateEach(t, data, o, aheadNever, 0, 0)
	calls := strings.Count("\n"+want, "\neach ")
	for _, block := range blocks {
		for _, ahead := range []aheadMode{aheadAuto, aheadAlways, aheadOdd} {
			if got := validateEach(t, data, o, ahead, block, 0); got != want {
				t.Fatalf("block %d, ahead %d: data %.300q\ntwo-core path:\n%.3000s\none-core path:\n%.3000s", block, ahead, data, got, want)
			}
		}
	}
	if calls == 0 {
		return
	}
	// Each's error stops the read at the same row on both paths.
	for _, failAt := range []int{1, calls/2 + 1, calls} {
		want := validateEach(t, data, o, aheadNever, 0, failAt)
		if !strings.Contains(want, "error: hook failed") {
			t.Fatalf("Each failed at call %d of %d, yet:\n%.2000s", failAt, calls, want)
		}
		for _, ahead := range []aheadMode{aheadAlways, aheadOdd} {
			if got := validateEach(t, data, o, ahead, blocks[0], failAt); got != want {
				t.Fatalf("Each failing at call %d, ahead %d:\ntwo-core path:\n%.3000s\none-core path:\n%.3000s", failAt, ahead, got, want)
			}
		}
	}
}

// TestEachParallelMatchesSerial: the rows Validate hands to Each on the
// two-core path (the read-ahead goroutine parses batches of rows, Each is
// called in file order) are the one-core path's, on every CSV dialect and
// trap the tokenizer knows, the LibreOffice fixture, and generated files of
// many blocks with rejects, duplicates, quotes, blank and wide lines.
func TestEachParallelMatchesSerial(t *testing.T) {
	refund := opts(paybatch.KindRefund)
	for i, s := range csvSeeds() {
		t.Run(fmt.Sprint("seed", i), func(t *testing.T) {
			checkEachPaths(t, []byte(s), refund, []int{1, 7, 64, 0})
			dc := refund
			dc.DecimalComma = true
			checkEachPaths(t, []byte(s), dc, []int{3, 0})
		})
	}
	t.Run("lo_csv", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join("testdata", "lo", "lo_csv.csv"))
		if err != nil {
			t.Fatal(err)
		}
		checkEachPaths(t, data, opts(paybatch.KindDDPayment), []int{1, 16, 0})
	})
	// 40 generated files; under -race the first 6 (the same files): the
	// read-ahead's concurrency is the same in each, the 40 add variety of
	// input, which the plain pass checks (225 s of the race pass's 290)
	files := 40
	if raceEnabled {
		files = 6
	}
	rng := rand.New(rand.NewPCG(18, 5))
	for n := range files {
		data := genRefundCSV(rng, 50+rng.IntN(1500))
		t.Run(fmt.Sprint("gen", n), func(t *testing.T) { checkEachPaths(t, data, refund, []int{97, 1024, 0}) })
	}
}

// genRefundCSV is a refund batch of about rows rows in a random dialect:
// mostly valid rows in several currencies, now and then a bad amount or
// terminal, a short or long row, a repeated id or a case-only twin, a blank
// or whitespace-only line, CRLF or CR line ends, a quoted value (which
// hands the rest of the text to encoding/csv), a very wide line.
func genRefundCSV(rng *rand.Rand, rows int) []byte {
	delim := string(",;\t|"[rng.IntN(4)])
	var b bytes.Buffer
	if rng.IntN(4) == 0 {
		b.WriteString("\xef\xbb\xbf")
	}
	b.WriteString(strings.ReplaceAll(refundHeader, ",", delim))
	curs := []string{"USD", "eur", "Gbp", "JPY", "KWD"}
	quoteAt := -1
	if rng.IntN(3) == 0 {
		quoteAt = rng.IntN(rows)
	}
	for i := range rows {
		id := fmt.Sprintf("id-%06d", i)
		amount := fmt.Sprint(1 + rng.IntN(100000))
		if rng.IntN(2) == 0 {
			amount += "." + fmt.Sprint(rng.IntN(10))
		}
		term, cur := "ABC123", curs[rng.IntN(len(curs))]
		switch k := rng.IntN(200); {
		case k == 0:
			amount = "1.0001"
		case k == 1:
			term = "BAD TERMINAL"
		case k == 2 && i > 0:
			id = fmt.Sprintf("id-%06d", rng.IntN(i)) // a duplicate
		case k == 3 && i > 0:
			id = fmt.Sprintf("ID-%06d", rng.IntN(i)) // a case-only twin
		case k == 4:
			b.WriteString("\n")
		case k == 5:
			b.WriteString(strings.Repeat(" "+delim, 5) + "\n")
		case k == 6:
			cur = "XXQ"
		case k == 7:
			id = ""
		case k == 8:
			amount = "-5"
		}
		fields := []string{term, "TX8A3F2C", "OR7B9E1D", id, amount, cur}
		switch k := rng.IntN(300); {
		case k == 0:
			fields = fields[:4]
		case k == 1:
			fields = append(fields, "extra")
		case k == 2 && rng.IntN(20) == 0:
			fields = append(fields, strings.Split(strings.Repeat("w"+delim, 1100), delim)...)
		}
		if i == quoteAt {
			fields[2] = `"OR` + delim + "\n" + `x"`
		}
		b.WriteString(strings.Join(fields, delim))
		switch rng.IntN(8) {
		case 0:
			b.WriteString("\r\n")
		case 1:
			if quoteAt < 0 {
				b.WriteString("\r\n")
				break
			}
			b.WriteString("\n")
		default:
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// FuzzValidateEach holds Validate's two-core path with Each to its one-core
// path on any text.
func FuzzValidateEach(f *testing.F) {
	for _, s := range csvSeeds() {
		f.Add([]byte(s))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 4 {
		f.Add(genRefundCSV(rng, 40))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkEachPaths(t, data, opts(paybatch.KindRefund), []int{5, 0})
	})
}

// TestEachErrorStopsRead: Each's error is Validate's error, and no row
// after it reaches Each, on the two-core path too.
func TestEachErrorStopsRead(t *testing.T) {
	var b strings.Builder
	b.WriteString(refundHeader)
	for i := range 50000 {
		fmt.Fprintf(&b, "ABC123,TX8A3F2C,OR7B9E1D,id-%d,1.00,USD\n", i)
	}
	boom := errors.New("disk full")
	for _, ahead := range []aheadMode{aheadAuto, aheadAlways, aheadNever} {
		o := opts(paybatch.KindRefund)
		o.ahead = ahead
		last := 1 // the header
		o.Each = func(in paybatch.Instruction, _ Position) error {
			if in.Source.Row != last+1 {
				t.Fatalf("ahead %d: row %d after row %d", ahead, in.Source.Row, last)
			}
			last = in.Source.Row
			if last == 30001 {
				return boom
			}
			return nil
		}
		data := []byte(b.String())
		_, err := ValidateInputs(context.Background(), []Input{{Name: "f.csv", R: bytes.NewReader(data), Size: int64(len(data))}}, o)
		if !errors.Is(err, boom) || last != 30001 {
			t.Fatalf("ahead %d: err %v, last row %d", ahead, err, last)
		}
	}
}

// dialectRows is a refund file in the dialect d, with quoted values that
// hold line breaks (LF and CRLF), doubled quotes, blank lines and blank
// records, and rejects among the valid rows.
func dialectRows(d string) []byte {
	delim, nl := ",", "\n"
	var b bytes.Buffer
	switch d {
	case "bom-semicolon-crlf":
		b.WriteString("\xef\xbb\xbf")
		delim, nl = ";", "\r\n"
	case "sep-line":
		delim, nl = ";", "\r\n"
		b.WriteString("sep=;\r\n")
	case "cr-only":
		nl = "\r"
	case "tab":
		delim = "\t"
	}
	b.WriteString(strings.ReplaceAll(strings.TrimSuffix(refundHeader, "\n"), ",", delim) + delim + "note" + nl)
	for i := range 70 {
		fields := []string{"ABC123", "TX8A3F2C", "OR7B9E1D", fmt.Sprintf("id-%03d", i), fmt.Sprintf("%d.%02d", 1+i, i%100), "USD", "n"}
		switch i % 11 {
		case 2:
			fields[4] = "1.001" // a reject
		case 4:
			fields[2] = "\"OR7B9E1D\""
			if d != "cr-only" {
				fields[6] = "\"a" + delim + "\r\nline two\"" // CRLF inside quotes
			}
		case 5:
			fields[6] = "\"a \"\"7\"\"" + strings.Repeat(nl+"line", 2) + "\"" // line ends inside quotes, doubled quotes
			if nl == "\r\n" {
				fields[6] = "\"a \"\"7\"\"" + "\nline two\nthree\"" // LF inside quotes in a CRLF file
			}
		case 6:
			fields[6] = "\"" + nl + nl + "\"" // only line ends inside quotes
		case 7:
			b.WriteString(nl + nl)
		case 8:
			b.WriteString(strings.Repeat(delim, 5) + nl)
		case 9:
			fields[0] = "BAD TERMINAL" // a reject
		}
		b.WriteString(strings.Join(fields, delim) + nl)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte(nl)) // the last row without its line end
}

// TestOpenAtEveryRow: reading a CSV again from the position Validate gave
// Each for any of its rows yields exactly the rows Validate gave Each from
// there on, in every dialect (BOM, semicolon, CRLF, a "sep=" line, CR-only
// line ends, TAB), across quoted values that hold line breaks, blank lines,
// blank records and rejects, on both of Validate's paths.
func TestOpenAtEveryRow(t *testing.T) {
	for _, d := range []string{"plain", "bom-semicolon-crlf", "sep-line", "cr-only", "tab"} {
		t.Run(d, func(t *testing.T) {
			data := dialectRows(d)
			for _, ahead := range []aheadMode{aheadNever, aheadAlways} {
				for _, block := range []int{16, 0} {
					out := validateEach(t, data, opts(paybatch.KindRefund), ahead, block, 0)
					if n := strings.Count(out, "\neach "); n < 50 {
						t.Fatalf("%d rows reached Each:\n%s", n, out)
					}
					if strings.Contains(out, "at {Offset:0 Line:0}") {
						t.Fatalf("a row without a position:\n%s", out)
					}
				}
			}
		})
	}
}

// TestOpenAtRefuses: OpenAt reads only a CSV, from a position that can be
// one (a UTF-16 text has none), and never panics on a wrong one.
func TestOpenAtRefuses(t *testing.T) {
	o := opts(paybatch.KindRefund)
	xlsx, err := os.ReadFile(filepath.Join("testdata", "lo", "lo_refund.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	utf16 := []byte("\xff\xfe")
	for _, r := range refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD\n" {
		utf16 = append(utf16, byte(r), 0)
	}
	csv := []byte(refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD\n")
	for _, c := range []struct {
		name string
		data []byte
		at   Position
	}{
		{"xlsx", xlsx, Position{Offset: 100, Line: 2}},
		{"utf16", utf16, Position{Offset: 200, Line: 2}},
		{"none", csv, Position{}},
		{"past the end", csv, Position{Offset: int64(len(csv)) + 1, Line: 2}},
		{"negative", csv, Position{Offset: -5, Line: 2}},
	} {
		b, err := OpenAt(bytes.NewReader(c.data), int64(len(c.data)), "f", o, c.at)
		if err == nil {
			b.Close()
			t.Errorf("%s: OpenAt(%+v) opened", c.name, c.at)
		} else if !errors.Is(err, paybatch.ErrUnusableFile) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A position in the middle of a row reads what is there as rows, and
	// ends: it cannot know better, and must not fail worse.
	for off := int64(0); off <= int64(len(csv)); off++ {
		b, err := OpenAt(bytes.NewReader(csv), int64(len(csv)), "f", o, Position{Offset: off, Line: 2})
		if err != nil {
			continue
		}
		for range b.All(context.Background()) {
		}
		b.Close()
	}
}
