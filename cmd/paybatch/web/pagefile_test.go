package web

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestWritePreviewRecord: the preview record written field by field (no
// allocation per row) is the record of formatted strings the pages read,
// for a refund, a void without an amount, and a Direct Debit whose date
// Bacs moves; page 2 starts at record pageSize+1.
func TestWritePreviewRecord(t *testing.T) {
	d := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	cases := []struct {
		in   paybatch.Instruction
		bacs time.Time
		want []string
	}{
		{paybatch.Instruction{Kind: paybatch.KindRefund, MerchantTxID: "rf-1", Terminal: "ABC123", TransactionRef: "TX000001", OrderRef: "OR000001",
			Amount: paybatch.Money{Currency: paybatch.MustCurrency("KWD"), Minor: 1_234_567}, Source: paybatch.Source{Row: 1_048_576}},
			time.Time{}, []string{"1048576", "rf-1", "ABC123", "TX000001", "OR000001", "1234567", "KWD", "", "", ""}},
		{paybatch.Instruction{Kind: paybatch.KindVoid, MerchantTxID: "vd-1", Terminal: "ABC123", TransactionRef: "TX000002", OrderRef: "OR000002",
			Source: paybatch.Source{Row: 3}},
			time.Time{}, []string{"3", "vd-1", "ABC123", "TX000002", "OR000002", "", "", "", "", ""}},
		{paybatch.Instruction{Kind: paybatch.KindDDPayment, MerchantTxID: "dd-1", Mandate: "M0000000000000001", Description: "annual fee",
			Amount: paybatch.Money{Currency: paybatch.MustCurrency("GBP"), Minor: 1000}, CollectionDate: d("2026-11-14"), Source: paybatch.Source{Row: 2}},
			d("2026-11-16"), []string{"2", "dd-1", "M0000000000000001", "", "", "1000", "GBP", "2026-11-14", "2026-11-16", "annual fee"}},
	}
	path := filepath.Join(t.TempDir(), "preview.pages")
	pw, err := createPageFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if err := writePreview(pw, c.in, c.bacs); err != nil {
			t.Fatal(err)
		}
	}
	for i := len(cases); i < pageSize+1; i++ {
		if err := pw.add(strconv.Itoa(i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.close(); err != nil {
		t.Fatal(err)
	}
	recs, err := readPage(path, 1)
	if err != nil || len(recs) != pageSize {
		t.Fatalf("page 1: %d records, %v", len(recs), err)
	}
	for i, c := range cases {
		if !slices.Equal(recs[i], c.want) {
			t.Errorf("record %d = %q, want %q", i, recs[i], c.want)
		}
	}
	recs, err = readPage(path, 2)
	if err != nil || len(recs) != 1 || !slices.Equal(recs[0], []string{strconv.Itoa(pageSize), "x"}) {
		t.Fatalf("page 2: %q, %v", recs, err)
	}
}
