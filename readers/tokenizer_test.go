package readers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/paybatch/paybatch"
)

// csvRead is everything a csvSource yields for data: each row's line and
// cells, and each error, in order, up to EOF (or 20 errors: encoding/csv
// reads on after a malformed record, and so must the byte-level path).
// With a mode other than readRows, the rows after the first two (a header
// and a first row, as openBatch reads them) come through the read-ahead in
// blocks (owned or borrowed), which stops at the first error.
func csvRead(t testing.TB, data []byte, block int, slow bool, mode readMode, rd func(io.Reader) io.Reader) (string, error) {
	t.Helper()
	var in io.Reader = bytes.NewReader(data)
	if rd != nil {
		in = rd(in)
	}
	s, err := openCSV(in, "f.csv")
	if err != nil {
		return "", err
	}
	s.blockSize, s.slow = block, slow
	var src source = s
	var out strings.Builder
	for n, errs := 0, 0; errs < 20; n++ {
		borrow := mode != readRows
		if borrow && n == 2 {
			s.fills, s.borrow = true, mode == readBorrowed
			p := newPrefetcher(s, nil, aheadAuto, nil)
			defer p.close()
			src = p
		}
		line, cells, err := src.next()
		if err == io.EOF {
			out.WriteString("EOF\n")
			break
		}
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n", err)
			errs++
			if borrow && n >= 2 {
				break
			}
			continue
		}
		fmt.Fprintf(&out, "%d:", line)
		for _, c := range cells {
			fmt.Fprintf(&out, " %q", c.s)
		}
		out.WriteString("\n")
	}
	return out.String(), nil
}

// checkTokenizer fails when the byte-level path (at block sizes from tiny
// to the default, through next and through borrowed blocks) and
// encoding/csv disagree on data in any way: a field, a line number, an
// error or its wording, or where reading stops.
func checkTokenizer(t testing.TB, data []byte, rd func(io.Reader) io.Reader) {
	t.Helper()
	want, werr := csvRead(t, data, 0, true, readRows, rd)
	for _, block := range []int{1, 2, 3, 7, 64, 0} {
		for _, mode := range []readMode{readRows, readOwned, readBorrowed} {
			got, gerr := csvRead(t, data, block, false, mode, rd)
			if fmt.Sprint(werr) != fmt.Sprint(gerr) {
				t.Fatalf("block %d: open error %v, encoding/csv %v", block, gerr, werr)
			}
			w := want
			if mode != readRows {
				// the read-ahead stops at the first error after the first two rows
				w = firstErrorAfter(want, 2)
			}
			if got != w {
				t.Fatalf("block %d, mode %d: data %q\nbyte-level:\n%s\nencoding/csv:\n%s", block, mode, data, got, w)
			}
		}
	}
}

// firstErrorAfter cuts a csvRead output after its first error line that
// follows n results.
func firstErrorAfter(out string, n int) string {
	lines := strings.SplitAfter(out, "\n")
	for i, l := range lines {
		if i >= n && strings.HasPrefix(l, "error: ") {
			return strings.Join(lines[:i+1], "")
		}
	}
	return out
}

// csvSeeds are CSV texts of every dialect and trap the tokenizer knows
// (FuzzCSVTokenizer's and FuzzValidateEach's seeds).
func csvSeeds() []string {
	return []string{
		refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD\n",
		refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD",
		refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD\r",
		refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD\r\r",
		refundHeader + "A,B\r\r\nC\r,D\r\n\r\n\r\r\n \t ,\n,,,\n",
		"\xef\xbb\xbfTerminal;Transaction Ref;Order Ref;Merchant Txn ID;Amount;Currency\r\nABC123;TX8A3F2C;OR7B9E1D;m-1;1000;JPY\r\n",
		"sep=;\r\nTerminal;Transaction Ref\r\nABC123;m,1\r\nx\"y;z\r\n",
		"a\tb\tc\n1\t2\t3\n",
		"a|b|c\n1|2|3\n",
		"a,b\rc,d\re,f\r",
		"\n\n" + refundHeader + "\nABC123,TX8A3F2C,OR7B9E1D,m-1,1.5,USD\n,,,,,\n\nABC123,TX8A3F2C,OR7B9E1D,m-2,2,USD\n",
		refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,\"m,1\",\"1\n\",USD\nABC123,TX8A3F2C,OR7B9E1D,m-2,3,USD\n",
		refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,\"m-1,1,USD\n",
		refundHeader + "ABC1\"23,TX8A3F2C\nx,y\n\"a\"b,c\nd,e\n",
		"a,b\n" + strings.Repeat("x,", 1100) + "x\nc,d\n" + strings.Repeat("y,", 1024) + "y\ne,f\n",
		"a,b\n" + strings.Repeat("x,", 1023) + "x\n",
		"a,b\n\xff\xfe,\x00\n\u00a0,\u3000\n",
		"\xff\xfea\x00,\x00b\x00\n\x001\x00,\x002\x00\n\x00",
	}
}

// FuzzCSVTokenizer holds the byte-level tokenizer to encoding/csv.
func FuzzCSVTokenizer(f *testing.F) {
	for _, s := range csvSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTokenizer(t, data, nil)
	})
}

// TestTokenizerMatchesCSV is the differential test on generated files: every
// dialect, CRs and CRLFs, blank and whitespace-only records, long and wide
// lines, and now and then a quote, in the first or a later block.
func TestTokenizerMatchesCSV(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 4))
	pieces := []string{"ABC123", "TX8A3F2C", "49.99", "1,234.56", "", " ", "\u00a0", "é", "\r", "x\ry", "m-1"}
	for n := range 250 {
		delim := ",;\t|"[rng.IntN(4)]
		var b bytes.Buffer
		for range 1 + rng.IntN(40) {
			switch rng.IntN(12) {
			case 0:
				b.WriteString("\n")
				continue
			case 1:
				b.WriteString("\r\n")
				continue
			}
			fields := 1 + rng.IntN(8)
			if rng.IntN(60) == 0 {
				fields = 1020 + rng.IntN(10)
			}
			for i := range fields {
				if i > 0 {
					b.WriteByte(delim)
				}
				switch k := rng.IntN(100); {
				case k == 0:
					b.WriteString(`"q` + string(delim) + "\n\"")
				case k == 1:
					b.WriteString(`a"b`)
				case k == 2:
					b.WriteString(`"open`)
				case k < 6:
					b.WriteString(strings.Repeat("long", rng.IntN(40)))
				default:
					b.WriteString(pieces[rng.IntN(len(pieces))])
				}
			}
			switch rng.IntN(5) {
			case 0:
				b.WriteString("\r\n")
			case 1:
				b.WriteString("\r")
			default:
				b.WriteString("\n")
			}
		}
		data := b.Bytes()
		if rng.IntN(3) == 0 {
			data = bytes.TrimRight(data, "\r\n")
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) { checkTokenizer(t, data, nil) })
	}
}

// TestTokenizerReadError: a read error reaches the caller after the records
// before it, as encoding/csv returns it, with the same message.
func TestTokenizerReadError(t *testing.T) {
	data := []byte(refundHeader + strings.Repeat("ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD\n", 3000))
	boom := errors.New("disk on fire")
	for _, after := range []int{70000, 100001, len(data) - 5} {
		rd := func(r io.Reader) io.Reader {
			return io.MultiReader(io.LimitReader(r, int64(after)), iotest.ErrReader(boom))
		}
		checkTokenizer(t, data, rd)
		got, _ := csvRead(t, data, 0, false, readRows, rd)
		if !strings.Contains(got, "disk on fire") {
			t.Fatalf("read error lost:\n%s", got)
		}
	}
	// one byte at a time, and reads that return data with io.EOF
	checkTokenizer(t, data, iotest.OneByteReader)
	checkTokenizer(t, data, iotest.DataErrReader)
}

// TestValidateBorrowedRows: Validate without Each reads rows into reused
// buffers; nothing of a row may outlive it. Over a file of many blocks, with
// currencies in every case, rejected rows, duplicates and case-only twins
// far apart, its report must be the report of the same file read into
// strings of their own (the one-core path), and name only what the file says.
func TestValidateBorrowedRows(t *testing.T) {
	var b strings.Builder
	b.WriteString(refundHeader)
	curs := []string{"usd", "EUR", "Gbp", "JPY", "kwd"}
	want := map[string]bool{}
	for i := range 20000 {
		cur := curs[i%len(curs)]
		if i > 5000 && i%7 == 0 {
			cur = "CHF" // first seen far past the first block
		}
		want[strings.ToUpper(cur)] = true
		amount := fmt.Sprint(1 + i%700)
		term := "ABC123"
		id := fmt.Sprintf("id-%06d", i)
		switch {
		case i%997 == 5:
			amount = "1.0001" // too many decimals
		case i%1301 == 7:
			term = "BAD TERMINAL"
		case i == 15000:
			id = "id-000003" // a duplicate of row 5
		case i == 19000:
			id = "ID-000010" // a case-only twin of row 12
		}
		fmt.Fprintf(&b, "%s,TX8A3F2C,OR7B9E1D,%s,%s,%s\n", term, id, amount, cur)
	}
	p := writeFile(t, "big.csv", []byte(b.String()))
	o := opts(paybatch.KindRefund)
	borrowed, err := Validate(context.Background(), []string{p}, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Each = func(paybatch.Instruction, Position) error { return nil }
	o.ahead = aheadNever // the one-core path: row by row, strings of their own
	own, err := Validate(context.Background(), []string{p}, o)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := showReport(borrowed), showReport(own); g != w {
		t.Fatalf("borrowed rows:\n%.3000s\nown rows:\n%.3000s", g, w)
	}
	for code := range borrowed.Totals {
		if !want[code] {
			t.Errorf("a total in %q, which the file does not hold", code)
		}
	}
	if len(borrowed.Totals) != len(want) || borrowed.Rejected < 30 || len(borrowed.Warnings) != 1 {
		t.Errorf("totals %v, %d rejected, warnings %v", borrowed.Totals.Strings(), borrowed.Rejected, borrowed.Warnings)
	}
}
