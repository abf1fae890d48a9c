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
	o.Each = func(in paybatch.Instruction) error {
		n++
		fmt.Fprintf(&out, "each %+v\n", in)
		if n == failAt {
			return fmt.Errorf("hook failed at row %d", in.Source.Row)
		}
		return nil
	}
	rep, err := ValidateInputs(context.Background(), []Input{{Name: "f.csv", R: bytes.NewReader(data), Size: int64(len(data))}}, o)
	if err != nil {
		fmt.Fprintf(&out, "error: %v\n", err)
		return out.String()
	}
	out.WriteString(showReport(rep))
	return out.String()
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
	rng := rand.New(rand.NewPCG(18, 5))
	for n := range 40 {
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
		o.Each = func(in paybatch.Instruction) error {
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
