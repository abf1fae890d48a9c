package readers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
)

// Seed corpora run under plain `go test`; explore with e.g.
// go test ./readers -run '^$' -fuzz FuzzAmount -fuzztime 60s

func FuzzCSVRow(f *testing.F) {
	for _, s := range []string{
		"ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD",
		"ABC123,TX8A3F2C,OR7B9E1D,\"m,\n1\",1000,JPY",
		"ABC123;TX8A3F2C;OR7B9E1D;m-1;1.234,56;EUR",
		"\"unterminated,1,2",
		",,,,,",
		"ABC123,TX8A3F2C,OR7B9E1D,m-1,-0,USD,extra,cols",
		"=cmd|' /C calc'!A0,TX8A3F2C,OR7B9E1D,m,1e3,USD",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, line string, decimalComma bool) {
		p := writeFile(t, "f.csv", []byte(refundHeader+line+"\n"))
		o := opts(paybatch.KindRefund)
		o.DecimalComma = decimalComma
		b, err := openPath(t, p, o)
		if err != nil {
			if !errors.Is(err, paybatch.ErrUnusableFile) && !errors.Is(err, paybatch.ErrMissingColumn) {
				t.Fatalf("Open error is not a file-level error: %v", err)
			}
			return
		}
		defer b.Close()
		for in, err := range b.All(context.Background()) {
			var re *paybatch.RowError
			switch {
			case errors.As(err, &re):
				if re.Source.Row < 2 || re.Source.File != p {
					t.Fatalf("bad source %+v", re.Source)
				}
			case err != nil:
				if !errors.Is(err, paybatch.ErrUnusableFile) {
					t.Fatalf("fatal error is not ErrUnusableFile: %v", err)
				}
			default:
				if in.Amount.Minor <= 0 || in.Amount.Currency.IsZero() || len(in.Terminal) != 6 ||
					len(in.TransactionRef) != 8 || len(in.OrderRef) != 8 || in.MerchantTxID == "" ||
					utf8.RuneCountInString(in.MerchantTxID) > 100 || in.Source.Row < 2 {
					t.Fatalf("invalid instruction accepted: %+v", in)
				}
			}
		}
	})
}

func FuzzAmount(f *testing.F) {
	for _, s := range []string{"49.99", "49.990000000000002", "0.30000000000000004", "1234567.88999999989755452",
		"1,234.56", "1.234,56", "1 234,5", "12,5", "-1", "0", "0.000", "1e3", "1.5E+2", "+7", ".5", "5.", "49.995",
		"999999999", "1000000000", "00012.30", "1..2", "1.2.3", " 7 ", "١٢"} {
		f.Add(s, uint8(0), false)
		f.Add(s, uint8(1), true)
		f.Add(s, uint8(2), false)
	}
	curs := []paybatch.Currency{paybatch.MustCurrency("USD"), paybatch.MustCurrency("JPY"), paybatch.MustCurrency("KWD")}
	f.Fuzz(func(t *testing.T, s string, ci uint8, decimalComma bool) {
		cur := curs[int(ci)%len(curs)]
		if m, err := parseAmountText(s, cur, decimalComma); err == nil {
			if m.Minor <= 0 || m.Currency != cur {
				t.Fatalf("parseAmountText(%q) = %v", s, m)
			}
			back, err := paybatch.ParseMoney(m.String(), cur)
			if err != nil || back != m {
				t.Fatalf("%q → %s does not round-trip: %v %v", s, m, back, err)
			}
			if !decimalComma {
				d, err := decimal.NewFromString(strings.TrimSpace(s))
				if err != nil || !d.Equal(m.Decimal()) {
					t.Fatalf("%q read as %s: not the exact value", s, m)
				}
			}
		}
		if m, err := parseAmountNumber(s, cur); err == nil {
			if m.Minor <= 0 {
				t.Fatalf("parseAmountNumber(%q) = %v", s, m)
			}
			d, derr := decimal.NewFromString(strings.TrimSpace(s))
			if derr != nil {
				t.Fatalf("accepted %q that is not a decimal", s)
			}
			// Exact, or the 15-significant-digit reading of the cell.
			if !d.Equal(m.Decimal()) && !round15(d).Equal(m.Decimal()) {
				t.Fatalf("parseAmountNumber(%q) = %s: neither exact nor its 15-digit value", s, m)
			}
		}
	})
}

func FuzzDate(f *testing.F) {
	for _, s := range []string{"2027-01-15", "15/01/2027", "1/2/2027", "01-12-2027", "01.12.2027", "2027/01/15",
		"12/25/2027", "01/12/27", "29/02/2027", "29/02/2028", "2027-01-15T00:00:00", "1 Dec 2027", "31 April 2027", ""} {
		f.Add(s, int64(46402))
	}
	f.Add("x", int64(60))
	f.Add("x", int64(61))
	f.Add("x", int64(1))
	f.Fuzz(func(t *testing.T, s string, serial int64) {
		if d, err := parseDateText(s); err == nil {
			if d.Location() != time.UTC || d.Hour() != 0 || d.Minute() != 0 || d.Second() != 0 || d.Nanosecond() != 0 {
				t.Fatalf("parseDateText(%q) = %v: not a date", s, d)
			}
			for _, layout := range []string{"2006-01-02", "02/01/2006"} {
				back, err := parseDateText(d.Format(layout))
				if err != nil || !back.Equal(d) {
					t.Fatalf("%q → %v does not round-trip via %s: %v %v", s, d, layout, back, err)
				}
			}
		}
		n := decimal.NewFromInt(serial).String()
		d00, err00 := dateFromSerial(n, false)
		d04, err04 := dateFromSerial(decimal.NewFromInt(serial-1462).String(), true)
		if serial > 60 && err00 == nil && err04 == nil && !d00.Equal(d04) {
			t.Fatalf("serial %d: 1900 system %v, 1904 system (serial %d) %v", serial, d00, serial-1462, d04)
		}
		if serial == 61 && (err00 != nil || !d00.Equal(time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC))) {
			t.Fatalf("serial 61 = %v %v, want 1900-03-01", d00, err00)
		}
	})
}

func FuzzHeader(f *testing.F) {
	for _, s := range []string{
		"Terminal,Transaction Ref,Order Ref,Merchant Txn ID,Amount,Currency",
		"TERMINAL_ID|TXN-REF|order.ref|merchant transaction id|Amount (USD)",
		"\ufeffterminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency,amount",
		"Référence,Montant,Devise",
		",,,",
	} {
		f.Add(s)
	}
	spec, _ := specFor(paybatch.KindRefund)
	f.Fuzz(func(t *testing.T, line string) {
		cells := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == '|' })
		for _, c := range cells {
			n := paybatch.HeaderKey(c)
			if paybatch.HeaderKey(n) != n {
				t.Fatalf("normHeader not idempotent on %q", c)
			}
			if paybatch.HeaderKey(strings.ToUpper(c)) != paybatch.HeaderKey(strings.ToLower(c)) && isASCII(c) {
				t.Fatalf("normHeader is case-sensitive on %q", c)
			}
		}
		cm, err := mapHeader(cells, spec, nil)
		if err != nil {
			if !errors.Is(err, paybatch.ErrMissingColumn) && !errors.Is(err, paybatch.ErrUnusableFile) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for _, fl := range spec.required {
			if cm.idx[fl] < 0 && (fl != fCurrency || cm.impliedC.IsZero()) {
				t.Fatalf("required %s unmatched but no error", fl)
			}
		}
		seen := map[int]bool{}
		for _, i := range cm.idx {
			if i >= 0 && seen[i] {
				t.Fatalf("column %d mapped twice", i)
			}
			seen[i] = i >= 0
		}
	})
}

// FuzzSheetXML feeds arbitrary bytes to the sheet tokenizer: it must end
// with rows, io.EOF or an error, never a panic or an endless loop.
func FuzzSheetXML(f *testing.F) {
	f.Add([]byte(`<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a&amp;b</t></is></c><c r="B1"><v>1.5</v></c></row></sheetData></worksheet>`))
	f.Add([]byte(`<x:worksheet><x:sheetData><x:row><x:c t="str"><x:f>1+1</x:f><x:v>2</x:v></x:c></x:row></x:sheetData></x:worksheet>`))
	f.Add([]byte(`<sheetData><row r="2"><c r="XFD2"><v>1</v></c></row><!-- c --><row><c><v><![CDATA[x<y]]></v></c></row></sheetData>`))
	f.Add([]byte(`<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row>`))
	f.Add([]byte(`<sheetData><row r="3"><c r="B3"><v>49.990000000000002</v></c><c r="C3" t="inlineStr"><is><t>x_x000D_y</t></is></c><c t="s"><v>0</v></c></row></sheetData>`))
	read := func(t *testing.T, data []byte, noFast bool) string {
		x := &xlsxSource{path: "f.xlsx", sheetName: "S", sst: &sharedStrings{blob: "zero", off: []uint32{0, 4}}, noFast: noFast}
		x.sc = newXMLScanner(bytes.NewReader(data))
		if err := x.seekSheetData(); err != nil {
			return "error"
		}
		var out strings.Builder
		for i := 0; i < 10000; i++ {
			row, cells, err := x.next()
			if err != nil {
				if err == io.EOF {
					return out.String() + "EOF"
				}
				return out.String() + "error"
			}
			if len(cells) > maxColumns {
				t.Fatalf("%d cells", len(cells))
			}
			fmt.Fprintf(&out, "%d %+v\n", row, cells)
		}
		t.Fatal("no end after 10000 rows from a small input")
		return ""
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The buffer-level fast path and the general tokenizer loop must agree.
		if fast, slow := read(t, data, false), read(t, data, true); fast != slow {
			t.Fatalf("fast path:\n%s\ngeneral path:\n%s", fast, slow)
		}
	})
}

// FuzzTable feeds arbitrary bytes to the one input layer (OpenTable and
// Next, which ledgers and results are read through): it ends with rows,
// io.EOF or an error naming the file, never a panic or an endless loop. A
// CSV record comes with a *FieldCountError exactly when its number of
// fields is not the header's, and row numbers only grow.
//
//	go test ./readers -run XXX -fuzz FuzzTable -fuzztime 1m
func FuzzTable(f *testing.F) {
	for _, s := range []string{
		"merchant_transaction_id,amount,currency\nA,1.00,USD\n",
		"merchant_transaction_id,currency,amount\nA,USD,1,234.00\nB,USD,2.00\n",
		"merchant_transaction_id,currency,amount\nA,USD\n",
		"id;amount\r1,5;2\r",
		"sep=|\nid|amount\n1|2\n",
		"\ufeffid,amount\n\"a\nb\",1\n",
		"\xff\xfei\x00d\x00,\x00a\x00\n\x001\x00,\x002\x00\n\x00",
		"id,amount\n\"1,00\n",
		"id,amount\nre\"f,1\n",
	} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"gen_refund.xlsx", "lo/lo_refund.xlsx"} {
		if data, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := OpenTable(bytes.NewReader(data), int64(len(data)), "fuzz.csv", TableOptions{})
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer tb.Close()
		last := tb.headerRow
		for range 1 << 20 {
			row, cells, err := tb.Next()
			if err == io.EOF {
				return
			}
			var fe *FieldCountError
			switch {
			case errors.As(err, &fe):
				if fe.Found == fe.Want || fe.Found != len(cells) || fe.Line != row {
					t.Fatalf("field count error %+v for a record of %d fields at row %d", fe, len(cells), row)
				}
			case err != nil:
				if !strings.Contains(err.Error(), "fuzz.csv") {
					t.Fatalf("error does not name the file: %v", err)
				}
				return
			case tb.Delimiter() != 0 && len(cells) != len(tb.Header()):
				t.Fatalf("a record of %d fields under a header of %d came without an error", len(cells), len(tb.Header()))
			}
			if tb.Delimiter() != 0 && row <= last {
				t.Fatalf("row %d after row %d", row, last)
			}
			last = row
		}
		t.Fatal("no end after 2^20 rows")
	})
}
