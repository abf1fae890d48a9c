package readers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// fixedNow is the clock of every test: collection dates before 2026-11-02 are past.
func fixedNow() time.Time { return time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC) }

func opts(k paybatch.Kind) Options { return Options{Kind: k, Rules: rulesOf(k)} }

// rulesOf is the provider's real rules for k, on the test clock (cmd wires
// them the same way through pipeline.RulesFor).
func rulesOf(k paybatch.Kind) paybatch.Rules {
	if k.Provider() == paybatch.SmarterPay {
		return smarterpay.Rules{Now: fixedNow}
	}
	return smartretry.Rules{}
}

func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// readAll opens path and collects every row's outcome.
func readAll(tb testing.TB, path string, o Options) ([]paybatch.Instruction, []*paybatch.RowError) {
	tb.Helper()
	b, err := openPath(tb, path, o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	defer b.Close()
	var ins []paybatch.Instruction
	var rejects []*paybatch.RowError
	for in, err := range b.All(context.Background()) {
		var re *paybatch.RowError
		switch {
		case errors.As(err, &re):
			rejects = append(rejects, re)
		case err != nil:
			tb.Fatalf("fatal: %v", err)
		default:
			ins = append(ins, in)
		}
	}
	return ins, rejects
}

const refundHeader = "terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n"

func TestCSVFormats(t *testing.T) {
	utf16le := func(s string) []byte {
		out := []byte{0xFF, 0xFE}
		for _, r := range s {
			out = append(out, byte(r), byte(r>>8))
		}
		return out
	}
	utf16be := func(s string) []byte {
		out := []byte{0xFE, 0xFF}
		for _, r := range s {
			out = append(out, byte(r>>8), byte(r))
		}
		return out
	}
	tsv := "Terminal\tTransaction Ref\tOrder Ref\tMerchant Txn ID\tAmount\tCurrency\r\nABC123\tTX8A3F2C\tOR7B9E1D\tm-1\t49.99\tUSD\r\n"
	tests := []struct {
		name     string
		data     []byte
		o        func(*Options)
		wantRows []int    // user-visible row of each valid instruction
		wantAmt  []string // amount of each valid instruction
		wantRej  []int    // rows rejected
	}{
		{name: "plain comma", data: []byte(refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,49.99,USD\n"),
			wantRows: []int{2}, wantAmt: []string{"49.99"}},
		{name: "utf8 BOM semicolon CRLF", data: []byte("\xef\xbb\xbfTerminal;Transaction Ref;Order Ref;Merchant Txn ID;Amount;Currency\r\nABC123;TX8A3F2C;OR7B9E1D;m-1;1000;JPY\r\n"),
			wantRows: []int{2}, wantAmt: []string{"1000"}},
		{name: "tab", data: []byte(tsv), wantRows: []int{2}, wantAmt: []string{"49.99"}},
		{name: "Excel sep= line names the delimiter and keeps line numbers",
			data:     []byte("sep=;\r\nTerminal;Transaction Ref;Order Ref;Merchant Txn ID;Amount;Currency\r\nABC123;TX8A3F2C;OR7B9E1D;m,1;2;USD\r\n"),
			wantRows: []int{3}, wantAmt: []string{"2.00"}},
		{name: "utf16le BOM tab (Excel Unicode text)", data: utf16le(tsv), wantRows: []int{2}, wantAmt: []string{"49.99"}},
		{name: "utf16be BOM", data: utf16be(tsv), wantRows: []int{2}, wantAmt: []string{"49.99"}},
		{name: "blank lines skipped, rows keep file line numbers",
			data:     []byte("\n\n" + refundHeader + "\nABC123,TX8A3F2C,OR7B9E1D,m-1,1.5,USD\n,,,,,\n\nABC123,TX8A3F2C,OR7B9E1D,m-2,2,USD\n"),
			wantRows: []int{5, 8}, wantAmt: []string{"1.50", "2.00"}},
		{name: "quoted field with embedded newline: row is the record's first line",
			data:     []byte(refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,\"m,1\",\"1\n\",USD\nABC123,TX8A3F2C,OR7B9E1D,m-2,3,USD\n"),
			wantRows: []int{2, 4}, wantAmt: []string{"1.00", "3.00"}},
		{name: "decimal comma", o: func(o *Options) { o.DecimalComma = true },
			data:     []byte("terminal;transaction_reference_id;order_reference_id;merchant_transaction_id;amount;currency\nABC123;TX8A3F2C;OR7B9E1D;m-1;1.234,56;EUR\nABC123;TX8A3F2C;OR7B9E1D;m-2;12,5;EUR\nABC123;TX8A3F2C;OR7B9E1D;m-3;1.5;EUR\n"),
			wantRows: []int{2, 3}, wantAmt: []string{"1234.56", "12.50"}, wantRej: []int{4}},
		{name: "thousands separator without --decimal-comma",
			data:    []byte(refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,\"1,234.50\",USD\n"),
			wantRej: []int{2}},
		{name: "Amount (USD) header carries the currency",
			data:     []byte("Terminal,Transaction Ref,Order Ref,Merchant Txn ID,Amount (USD)\nABC123,TX8A3F2C,OR7B9E1D,m-1,10\n"),
			wantRows: []int{2}, wantAmt: []string{"10.00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts(paybatch.KindRefund)
			if tt.o != nil {
				tt.o(&o)
			}
			ins, rej := readAll(t, writeFile(t, "b.csv", tt.data), o)
			if len(ins) != len(tt.wantRows) {
				t.Fatalf("got %d valid rows, want %d (rejects %v)", len(ins), len(tt.wantRows), rej)
			}
			for i, in := range ins {
				if in.Source.Row != tt.wantRows[i] || in.Amount.String() != tt.wantAmt[i] {
					t.Errorf("row %d: got row %d amount %s, want row %d amount %s", i, in.Source.Row, in.Amount, tt.wantRows[i], tt.wantAmt[i])
				}
			}
			if len(rej) != len(tt.wantRej) {
				t.Fatalf("got rejects %v, want rows %v", rej, tt.wantRej)
			}
			for i, r := range rej {
				if r.Source.Row != tt.wantRej[i] {
					t.Errorf("reject %d at row %d, want %d: %v", i, r.Source.Row, tt.wantRej[i], r)
				}
			}
		})
	}
}

// TestKinds is the per-kind table: each case is a header and one data row,
// and either the instruction fields that must come out or the column and
// sentinel of the rejection.
func TestKinds(t *testing.T) {
	type want struct {
		col string
		err error
	}
	tests := []struct {
		name   string
		kind   paybatch.Kind
		csv    string
		check  func(t *testing.T, in paybatch.Instruction)
		reject *want
	}{
		{name: "refund ok", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,25.00,usd",
			check: func(t *testing.T, in paybatch.Instruction) {
				if in.Terminal != "ABC123" || in.TransactionRef != "TX8A3F2C" || in.OrderRef != "OR7B9E1D" || in.MerchantTxID != "r-1" ||
					in.Amount != (paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: 2500}) || in.Provider != paybatch.SmartRetry {
					t.Errorf("got %+v", in)
				}
			}},
		{name: "refund KWD three decimals", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,1.005,KWD",
			check: func(t *testing.T, in paybatch.Instruction) {
				if in.Amount.Minor != 1005 {
					t.Errorf("got %v", in.Amount)
				}
			}},
		{name: "refund JPY decimals rejected", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,10.5,JPY",
			reject: &want{"amount", paybatch.ErrBadAmount}},
		{name: "refund excess decimals", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,10.555,USD",
			reject: &want{"amount", paybatch.ErrBadAmount}},
		{name: "refund negative", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,-1,USD",
			reject: &want{"amount", paybatch.ErrBadAmount}},
		{name: "refund over SmartRetry max", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,1000000000,USD",
			reject: &want{"amount", paybatch.ErrBadAmount}},
		{name: "refund at SmartRetry max", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,999999999.00,USD",
			check: func(t *testing.T, in paybatch.Instruction) {}},
		{name: "refund currency symbol", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,$5,USD",
			reject: &want{"amount", paybatch.ErrBadAmount}},
		{name: "refund bad currency", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,5,XXY",
			reject: &want{"currency", paybatch.ErrBadCurrency}},
		{name: "refund missing currency", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,r-1,5,",
			reject: &want{"currency", paybatch.ErrMissingField}},
		{name: "terminal 7 chars", kind: paybatch.KindRefund, csv: refundHeader + "ABC1234,TX8A3F2C,OR7B9E1D,r-1,5,USD",
			reject: &want{"terminal", paybatch.ErrBadField}},
		{name: "terminal punctuation", kind: paybatch.KindCapture, csv: refundHeader + "ABC-12,TX8A3F2C,OR7B9E1D,r-1,5,USD",
			reject: &want{"terminal", paybatch.ErrBadField}},
		{name: "transaction ref 7 chars", kind: paybatch.KindCapture, csv: refundHeader + "ABC123,TX8A3F2,OR7B9E1D,r-1,5,USD",
			reject: &want{"transaction_reference_id", paybatch.ErrBadField}},
		{name: "order ref missing", kind: paybatch.KindCapture, csv: refundHeader + "ABC123,TX8A3F2C,,r-1,5,USD",
			reject: &want{"order_reference_id", paybatch.ErrMissingField}},
		{name: "merchant id missing", kind: paybatch.KindCapture, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,  ,5,USD",
			reject: &want{"merchant_transaction_id", paybatch.ErrMissingField}},
		{name: "merchant id 101 chars", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D," + strings.Repeat("x", 101) + ",5,USD",
			reject: &want{"merchant_transaction_id", paybatch.ErrBadField}},
		{name: "merchant id 100 chars", kind: paybatch.KindRefund, csv: refundHeader + "ABC123,TX8A3F2C,OR7B9E1D," + strings.Repeat("é", 100) + ",5,USD",
			check: func(t *testing.T, in paybatch.Instruction) {}},
		{name: "void needs no amount", kind: paybatch.KindVoid,
			csv: "terminal,transaction_reference_id,order_reference_id,merchant_transaction_id\nABC123,TX8A3F2C,OR7B9E1D,v-1",
			check: func(t *testing.T, in paybatch.Instruction) {
				if in.Kind != paybatch.KindVoid || !in.Amount.Currency.IsZero() || in.MerchantTxID != "v-1" {
					t.Errorf("got %+v", in)
				}
			}},
		{name: "dd-payment ok, currency defaults to GBP, UK date", kind: paybatch.KindDDPayment,
			csv: "mandate,merchant_transaction_id,amount,collection_date,default_narrative\nM01741EJ519Y51P3XGL,d-1,25.32,15/01/2027,RENT",
			check: func(t *testing.T, in paybatch.Instruction) {
				if in.Mandate != "M01741EJ519Y51P3XGL" || in.Amount.Minor != 2532 || in.Amount.Currency.Code() != "GBP" ||
					!in.CollectionDate.Equal(time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)) || in.DefaultNarrative != "RENT" || in.Provider != paybatch.SmarterPay {
					t.Errorf("got %+v", in)
				}
			}},
		{name: "dd-payment today is fine", kind: paybatch.KindDDPayment,
			csv:   "auddis,merchant_transaction_id,amount,collection_date\nFBMAN02814872,d-1,1,2026-11-02",
			check: func(t *testing.T, in paybatch.Instruction) {}},
		{name: "dd-payment past date", kind: paybatch.KindDDPayment,
			csv:    "auddis,merchant_transaction_id,amount,collection_date\nFBMAN02814872,d-1,1,2026-11-01",
			reject: &want{"collection_date", paybatch.ErrBadDate}},
		{name: "dd-payment ambiguous two-digit year", kind: paybatch.KindDDPayment,
			csv:    "auddis,merchant_transaction_id,amount,collection_date\nFBMAN02814872,d-1,1,01/12/27",
			reject: &want{"collection_date", paybatch.ErrBadDate}},
		{name: "dd-payment US-style date", kind: paybatch.KindDDPayment,
			csv:    "auddis,merchant_transaction_id,amount,collection_date\nFBMAN02814872,d-1,1,12/25/2027",
			reject: &want{"collection_date", paybatch.ErrBadDate}},
		{name: "dd-payment EUR refused", kind: paybatch.KindDDPayment,
			csv:    "mandate,merchant_transaction_id,amount,currency,collection_date\nM1,d-1,1,EUR,2027-01-01",
			reject: &want{"currency", paybatch.ErrBadCurrency}},
		{name: "dd-payment narrative 19 chars", kind: paybatch.KindDDPayment,
			csv:    "mandate,merchant_transaction_id,amount,collection_date,narrative\nM1,d-1,1,2027-01-01,1234567890123456789",
			reject: &want{"narrative", paybatch.ErrBadField}},
		{name: "dd-payment neither mandate nor auddis", kind: paybatch.KindDDPayment,
			csv:    "mandate,auddis,merchant_transaction_id,amount,collection_date\n,,d-1,1,2027-01-01",
			reject: &want{"mandate", paybatch.ErrMissingField}},
		{name: "dd-payment over Bacs limit", kind: paybatch.KindDDPayment,
			csv:    "mandate,merchant_transaction_id,amount,collection_date\nM1,d-1,20000000.01,2027-01-01",
			reject: &want{"amount", paybatch.ErrBadAmount}},
		{name: "dd-credit ok with bank account and credit_date", kind: paybatch.KindDDCredit,
			csv: "bank_account,reference,amount,credit_date,description\nBANK00003454,c-1,100,2027-01-04,Refund of overpayment",
			check: func(t *testing.T, in paybatch.Instruction) {
				if in.BankAccount != "BANK00003454" || in.MerchantTxID != "c-1" || in.Amount.Minor != 10000 || in.Description != "Refund of overpayment" {
					t.Errorf("got %+v", in)
				}
			}},
		{name: "dd-credit description required", kind: paybatch.KindDDCredit,
			csv:    "auddis,merchant_transaction_id,amount,credit_date,description\nAUD1,c-1,100,2027-01-04,",
			reject: &want{"description", paybatch.ErrMissingField}},
		{name: "dd-credit description 101 chars", kind: paybatch.KindDDCredit,
			csv:    "auddis,merchant_transaction_id,amount,credit_date,description\nAUD1,c-1,100,2027-01-04," + strings.Repeat("d", 101),
			reject: &want{"description", paybatch.ErrBadField}},
		{name: "dd-credit bad auddis chars", kind: paybatch.KindDDCredit,
			csv:    "auddis,merchant_transaction_id,amount,credit_date,description\naud_1,c-1,100,2027-01-04,x",
			reject: &want{"auddis", paybatch.ErrBadField}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, rej := readAll(t, writeFile(t, "b.csv", []byte(tt.csv+"\n")), opts(tt.kind))
			if tt.reject != nil {
				if len(rej) != 1 || len(ins) != 0 {
					t.Fatalf("want one reject, got %d valid, rejects %v", len(ins), rej)
				}
				if rej[0].Column != tt.reject.col || !errors.Is(rej[0], tt.reject.err) || rej[0].Source.Row != 2 {
					t.Fatalf("got %v (column %q), want column %q, %v", rej[0], rej[0].Column, tt.reject.col, tt.reject.err)
				}
				return
			}
			if len(ins) != 1 {
				t.Fatalf("want one instruction, got rejects %v", rej)
			}
			tt.check(t, ins[0])
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Run("missing column names it and the headers found", func(t *testing.T) {
		p := writeFile(t, "b.csv", []byte("Terminal,Order Ref,Merchant Txn ID,Amount,Currency,Notes\nABC123,OR7B9E1D,m,1,USD,x\n"))
		_, err := openPath(t, p, opts(paybatch.KindRefund))
		if !errors.Is(err, paybatch.ErrMissingColumn) {
			t.Fatalf("got %v", err)
		}
		for _, s := range []string{p, "transaction_reference_id", `"Terminal"`, `"Notes"`, "--mapping"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	})
	t.Run("unknown columns listed", func(t *testing.T) {
		p := writeFile(t, "b.csv", []byte(refundHeader[:len(refundHeader)-1]+",Notes,mandate\nABC123,TX8A3F2C,OR7B9E1D,m,1,USD,x,y\n"))
		b, err := openPath(t, p, opts(paybatch.KindRefund))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if got := strings.Join(b.Unknown(), "|"); got != "Notes|mandate" {
			t.Errorf("Unknown() = %q", got)
		}
	})
	t.Run("two columns for one field", func(t *testing.T) {
		p := writeFile(t, "b.csv", []byte(refundHeader[:len(refundHeader)-1]+",Reference\nABC123,TX8A3F2C,OR7B9E1D,m,1,USD,x\n"))
		_, err := openPath(t, p, opts(paybatch.KindRefund))
		if !errors.Is(err, paybatch.ErrUnusableFile) || !strings.Contains(err.Error(), "Reference") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("mapping file", func(t *testing.T) {
		m, err := LoadMapping(strings.NewReader("columns:\n  \"Cust Ref\": merchant_transaction_id\n  Value GBP: amount\n  Due: collection_date\n"))
		if err != nil {
			t.Fatal(err)
		}
		o := opts(paybatch.KindDDPayment)
		o.Aliases = m
		ins, rej := readAll(t, writeFile(t, "b.csv", []byte("Mandate,CUST-REF,value gbp,due\nM1,c-9,12.30,2027-02-01\n")), o)
		if len(ins) != 1 || len(rej) != 0 || ins[0].MerchantTxID != "c-9" || ins[0].Amount.Minor != 1230 {
			t.Fatalf("got %+v %v", ins, rej)
		}
		for _, bad := range []string{"", "columns:\n  X: nosuchfield\n", "colums:\n  X: amount\n", "columns: [1,2]\n"} {
			if _, err := LoadMapping(strings.NewReader(bad)); err == nil {
				t.Errorf("LoadMapping(%q) accepted", bad)
			}
		}
	})
}

func TestValidateDuplicatesAcrossFiles(t *testing.T) {
	a := writeFile(t, "a.csv", []byte(refundHeader+
		"ABC123,TX8A3F2C,OR7B9E1D,dup,1,USD\n"+
		"ABC123,TX8A3F2C,OR7B9E1D,ok-1,2.50,USD\n"+
		"ABC123,TX8A3F2C,OR7B9E1D,dup,3,USD\n"+
		"ABC123,TX8A3F2C,OR7B9E1D,bad,3.001,USD\n"+
		"ABC123,TX8A3F2C,OR7B9E1D,jp,100,JPY\n"))
	b := writeFile(t, "b.csv", []byte(refundHeader+"ABC123,TX8A3F2C,OR7B9E1D,dup,4,USD\nABC123,TX8A3F2C,OR7B9E1D,ok-2,1,USD\n"))
	rep, err := Validate(context.Background(), []string{a, b}, opts(paybatch.KindRefund))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 7 || rep.Valid != 3 || rep.Rejected != 4 {
		t.Fatalf("rows/valid/rejected = %d/%d/%d, want 7/3/4; rejects %v", rep.Rows, rep.Valid, rep.Rejected, rep.Rejects)
	}
	if got := rep.Totals.Strings(); got["USD"] != "3.50" || got["JPY"] != "100" || rep.Counts["USD"] != 2 || rep.Counts["JPY"] != 1 {
		t.Errorf("totals %v counts %v", got, rep.Counts)
	}
	dups := 0
	for _, r := range rep.Rejects {
		if errors.Is(&r, paybatch.ErrDuplicateID) {
			dups++
			for _, s := range []string{"3 times", a + " row 2", a + " row 4", b + " row 2"} {
				if !strings.Contains(r.Error(), s) {
					t.Errorf("%v does not name %q", r.Error(), s)
				}
			}
		}
	}
	if dups != 3 {
		t.Errorf("got %d duplicate rejects, want 3 (every copy)", dups)
	}
	for _, src := range []paybatch.Source{{File: a, Row: 2}, {File: a, Row: 4}, {File: a, Row: 5}, {File: b, Row: 2}} {
		if !rep.IsRejected(src) {
			t.Errorf("IsRejected(%v) = false", src)
		}
	}
	if rep.IsRejected(paybatch.Source{File: a, Row: 3}) {
		t.Error("valid row marked rejected")
	}
	if len(rep.Files) != 2 || rep.Files[0].Rows != 5 || len(rep.Files[0].SHA256) != 64 {
		t.Errorf("files %+v", rep.Files)
	}
}

// TestValidateEach: Each sees every row that passed its own checks, in
// file order, once (duplicates included, as IsRejected tells afterwards),
// and its error stops Validate.
func TestValidateEach(t *testing.T) {
	a := writeFile(t, "a.csv", []byte(refundHeader+
		"ABC123,TX8A3F2C,OR7B9E1D,dup,1,USD\n"+
		"ABC123,TX8A3F2C,OR7B9E1D,ok-1,2.50,USD\n"+
		"ABC123,TX8A3F2C,OR7B9E1D,dup,3,USD\n"+
		"ABC123,TX8A3F2C,OR7B9E1D,bad,3.001,USD\n"))
	o := opts(paybatch.KindRefund)
	var seen []string
	o.Each = func(in paybatch.Instruction, _ Position) error {
		seen = append(seen, fmt.Sprintf("%d:%s:%s", in.Source.Row, in.MerchantTxID, in.Amount))
		return nil
	}
	rep, err := Validate(context.Background(), []string{a}, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(seen, " "), "2:dup:1.00 3:ok-1:2.50 4:dup:3.00"; got != want {
		t.Errorf("Each saw %q, want %q", got, want)
	}
	if !rep.IsRejected(paybatch.Source{File: a, Row: 2}) || rep.IsRejected(paybatch.Source{File: a, Row: 3}) {
		t.Error("IsRejected does not tell the duplicates Each saw")
	}
	stop := errors.New("stop")
	o.Each = func(paybatch.Instruction, Position) error { return stop }
	if _, err := Validate(context.Background(), []string{a}, o); !errors.Is(err, stop) {
		t.Errorf("Validate = %v, want Each's error", err)
	}
}

// TestIDSetCollisions forces every id onto one hash: duplicates must still
// be exactly the equal ids, in reading order.
func TestIDSetCollisions(t *testing.T) {
	for _, hash := range []func(string) uint64{nil, func(string) uint64 { return 42 },
		// equal low 32 bits (what the sort orders by), different high bits
		func(s string) uint64 { return uint64(len(s))<<32 | 42 }} {
		s := &idSet{seed: maphash.MakeSeed(), hash: hash}
		for i, id := range []string{"a", "b", "a", "c", "b", "a", "ab", "AB", "A"} {
			s.add(id, seenRow{row: uint32(i + 2)})
		}
		got, caseOnly := s.duplicates()
		// entries by their row (rows 2, 3, … in reading order)
		rows := func(gs [][]uint32) [][]uint32 {
			var out [][]uint32
			for _, g := range gs {
				var r []uint32
				for _, at := range g {
					sr, _ := s.entry(at)
					r = append(r, sr.row-2)
				}
				out = append(out, r)
			}
			slices.SortFunc(out, func(x, y []uint32) int { return int(x[0]) - int(y[0]) })
			return out
		}
		if want := [][]uint32{{0, 8}, {6, 7}}; !slices.EqualFunc(rows(caseOnly), want, slices.Equal) {
			t.Errorf("case-only groups %v, want %v", rows(caseOnly), want)
		}
		want := [][]uint32{{0, 2, 5}, {1, 4}}
		if !slices.EqualFunc(rows(got), want, slices.Equal) {
			t.Errorf("duplicates() = %v, want %v", rows(got), want)
		}
		dup := map[uint32]bool{}
		for _, at := range s.all() {
			sr, _ := s.entry(at)
			dup[sr.row-2] = sr.dup
		}
		for i, d := range []bool{true, true, true, false, true, true, false, false, false} {
			if dup[uint32(i)] != d {
				t.Errorf("row %d dup = %v", i, !d)
			}
		}
	}
}

// TestIDSetEntries: every entry reads back as added, across arena chunks,
// at the ends of each field's range.
func TestIDSetEntries(t *testing.T) {
	s := &idSet{seed: maphash.MakeSeed()}
	mk := func(i int) (seenRow, string) {
		sr := seenRow{row: uint32(i * 7919), file: uint16(i % 65535), cur: int16(i%300) - 1, minor: int64(i) * 1_000_000_007}
		switch i % 5 {
		case 0:
			sr.row, sr.minor = 1<<32-1, 1e15
		case 1:
			sr.minor = -int64(i)
		case 2:
			sr.file, sr.cur, sr.minor = 65535, 32766, 1<<63-1
		}
		return sr, strings.Repeat("é", i%200) + fmt.Sprint(i)
	}
	const n = 60000 // ≈ 12 MB of entries: a dozen chunks
	for i := range n {
		sr, id := mk(i)
		s.add(id, sr)
	}
	if len(s.arenas) < 5 {
		t.Fatalf("%d chunks", len(s.arenas))
	}
	all := s.all()
	for i, at := range all {
		sr, id := s.entry(at)
		wsr, wid := mk(i)
		if sr != wsr || id != wid {
			t.Fatalf("entry %d: %+v %q, want %+v %q", i, sr, id, wsr, wid)
		}
	}
	if len(all) != n {
		t.Fatalf("%d entries", len(all))
	}
}

// all is every entry of s, in reading order.
func (s *idSet) all() []uint32 {
	var at []uint32
	for _, bk := range s.buckets {
		for _, c := range bk {
			for _, e := range c {
				at = append(at, e.at)
			}
		}
	}
	slices.Sort(at)
	return at
}

func TestSortBucket(t *testing.T) {
	var count [1<<12 + 1]int32
	var scratch []idHash
	for _, n := range []int{0, 1, 100, 5000, 70000} {
		a := make([]idHash, n)
		for i := range a {
			// one bucket: equal top 8 bits; many equal hashes
			a[i] = idHash{h: 0xAB<<24 | uint32(uint64(i*2654435761)%977<<uint(i%20))&0xffffff, at: uint32(i)}
		}
		want := slices.Clone(a)
		slices.SortStableFunc(want, func(x, y idHash) int { return cmp.Compare(x.h, y.h) })
		// in chunks of 1000, as idSet keeps them
		var chunks [][]idHash
		for c := range slices.Chunk(a, 1000) {
			chunks = append(chunks, c)
		}
		if scratch = sortBucket(chunks, scratch, &count); !slices.Equal(scratch, want) {
			t.Fatalf("n=%d: sortBucket differs from a stable sort", n)
		}
	}
}

// TestAllStopsEarly abandons the iteration after one row: Close must stop
// the read-ahead goroutine, and a cancelled context ends All with an error.
func TestAllStopsEarly(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(refundHeader)
	for i := range 5000 {
		fmt.Fprintf(&sb, "ABC123,TX8A3F2C,OR7B9E1D,m-%d,1,USD\n", i)
	}
	p := writeFile(t, "big.csv", []byte(sb.String()))
	before := runtime.NumGoroutine()
	b, err := openPath(t, p, opts(paybatch.KindRefund))
	if err != nil {
		t.Fatal(err)
	}
	for range b.All(context.Background()) {
		break
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // a second Close is harmless
		t.Fatal(err)
	}
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b, err = openPath(t, p, opts(paybatch.KindRefund))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var last error
	for _, err := range b.All(ctx) {
		last = err
	}
	if !errors.Is(last, context.Canceled) {
		t.Errorf("cancelled All ended with %v", last)
	}
}

func TestNotUTF8(t *testing.T) {
	// Windows-1252 "£" in the first 64 KB: the file is refused at Open.
	p := writeFile(t, "cp1252.csv", []byte("auddis,merchant_transaction_id,amount,credit_date,description\nAUD1,c-1,1,2027-01-04,Refund \xa35\n"))
	if _, err := openPath(t, p, opts(paybatch.KindDDCredit)); !errors.Is(err, paybatch.ErrUnusableFile) || !strings.Contains(err.Error(), "CSV UTF-8") {
		t.Fatalf("got %v", err)
	}
	// Past the first 64 KB: that row is rejected, naming the column.
	var sb strings.Builder
	sb.WriteString("auddis,merchant_transaction_id,amount,credit_date,description\n")
	for i := 0; sb.Len() < 70<<10; i++ {
		fmt.Fprintf(&sb, "AUD1,c-%d,1,2027-01-04,ok\n", i)
	}
	sb.WriteString("AUD1,last,1,2027-01-04,Refund \xa35\n")
	_, rej := readAll(t, writeFile(t, "late.csv", []byte(sb.String())), opts(paybatch.KindDDCredit))
	if len(rej) != 1 || rej[0].Column != "description" || !errors.Is(rej[0], paybatch.ErrBadField) {
		t.Fatalf("rejects %v", rej)
	}
}
