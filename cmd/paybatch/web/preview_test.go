package web

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// previewCSV is a batch of n rows of kind in a CSV dialect: line ends nl,
// delimiter delim, a BOM or a "sep=" line when asked, quoted values holding
// line breaks and doubled quotes in a column the kind does not use, blank
// lines and blank records, rejects of their own among the valid rows, a
// card number in an id (masked on the page), and, with dup, two rows
// repeating an id (refused at the end, after the pass saw them).
func previewCSV(kind, nl, delim string, bom, sep, dup bool, n int) []byte {
	var b bytes.Buffer
	if bom {
		b.WriteString("\xef\xbb\xbf")
	}
	if sep {
		b.WriteString("sep=" + delim + nl)
	}
	head := []string{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency", "note"}
	if kind == "dd-payment" {
		head = []string{"Mandate", "Amount", "Collection Date", "Reference", "Description", "note"}
	}
	b.WriteString(strings.Join(head, delim) + nl)
	lineBreak := "\n"
	if nl == "\r" {
		lineBreak = "\r" // a CR-only file has no LF, inside quotes either
	}
	for i := range n {
		id := fmt.Sprintf("PV-%04d", i)
		if i == 17 {
			id = "4111111111111111"
		}
		if dup && (i == 30 || i == n-7) {
			id = "PV-DUP"
		}
		amount := fmt.Sprintf("%d.%02d", 1+i*7%5000, i%100)
		note := "n"
		switch i % 13 {
		case 3:
			note = `"a` + delim + lineBreak + `b ""q"""`
		case 5:
			b.WriteString(nl + nl)
		case 6:
			b.WriteString(strings.Repeat(delim, len(head)-1) + nl)
		case 8:
			amount = "1.001" // a reject of its own
		case 11:
			note = `"` + nl + `"`
		}
		var fields []string
		if kind == "dd-payment" {
			// Mondays to Sundays from 2026-11-09: some are moved by Bacs.
			date := time.Date(2026, 11, 9+i%21, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
			if i%29 == 4 {
				date = "2026-13-01" // a reject
			}
			fields = []string{fmt.Sprintf("M%016d", i), amount, date, id, fmt.Sprintf("Desc %d", i), note}
		} else {
			cur := []string{"USD", "JPY", "GBP"}[i%3]
			if cur == "JPY" {
				amount = fmt.Sprint(1 + i)
			}
			fields = []string{"ABC123", fmt.Sprintf("TX%06d", i), fmt.Sprintf("OR%06d", i), id, amount, cur, note}
		}
		b.WriteString(strings.Join(fields, delim))
		if i < n-1 {
			b.WriteString(nl)
		}
	}
	return b.Bytes()
}

// TestPreviewFromUploadEqualsPageFile: every page of a CSV's preview read
// from the upload (previewAt: where validation said the page starts, the
// rows read again by the readers with validation's options and clock) is
// the page the preview page file gives — row for row, field for field —
// over the CSV dialects (LF, CRLF, CR-only, BOM, semicolon, TAB, a "sep="
// line, quoted values with line breaks), rejects interleaved, ids repeated
// (refused at the end), Bacs dates, and the last page short.
func TestPreviewFromUploadEqualsPageFile(t *testing.T) {
	h := newHarness(t)
	// A Monday: collection dates in the next weeks, some not collectable.
	h.clock.t = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	h.srv.previewFile = true
	uma := h.signIn("uma")
	ctx := context.Background()
	for _, c := range []struct {
		name, kind, nl, delim string
		bom, sep, dup         bool
		n                     int
	}{
		{"lf", "refund", "\n", ",", false, false, false, 183},
		{"crlf-dup", "refund", "\r\n", ",", false, false, true, 183},
		{"bom-semicolon-crlf", "refund", "\r\n", ";", true, false, false, 151},
		{"sep-line-dup", "refund", "\r\n", ";", false, true, true, 160},
		{"cr-only", "refund", "\r", ",", false, false, false, 120},
		{"tab-bom-dup", "refund", "\n", "\t", true, false, true, 99},
		{"dd-dates", "dd-payment", "\n", ",", false, false, false, 170},
		{"dd-dates-dup-crlf", "dd-payment", "\r\n", ";", true, false, true, 140},
		{"one-page", "refund", "\n", ",", false, false, false, 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := previewCSV(c.kind, c.nl, c.delim, c.bom, c.sep, c.dup, c.n)
			id := h.uploaded(uma, c.kind, c.name+".csv", data)
			b := h.batch(id)
			if b.Valid < c.n*3/4 || b.Rejected == 0 {
				t.Fatalf("rows %d valid %d rejected %d: %+v", b.Rows, b.Valid, b.Rejected, b.Summary.Groups)
			}
			if _, err := os.Stat(previewAtPath(b)); err != nil {
				t.Fatalf("no preview index: %v", err)
			}
			if _, err := os.Stat(previewDropPath(b)); (err == nil) != c.dup {
				t.Errorf("preview.drop there: %v, rows repeated: %v", err == nil, c.dup)
			}
			pages := (b.Valid + pageSize - 1) / pageSize
			total, moved := 0, 0
			for p := 1; p <= pages+1; p++ {
				want, err := previewFromFile(b, p)
				if err != nil {
					t.Fatal(err)
				}
				got, ok, err := h.srv.previewAt(ctx, b, p)
				if err != nil || !ok {
					t.Fatalf("page %d: ok %v, %v", p, ok, err)
				}
				if (len(got) > 0 || len(want) > 0) && !reflect.DeepEqual(got, want) {
					t.Fatalf("page %d of %d from the upload:\n%+v\nfrom the page file:\n%+v", p, pages, got, want)
				}
				for _, r := range got {
					if strings.Contains(r.MerchantTxID, "PV-DUP") || strings.Contains(r.MerchantTxID, "4111111111111111") {
						t.Fatalf("page %d shows %+v", p, r)
					}
					if strings.Contains(r.Date, "requested") {
						moved++
					}
				}
				total += len(got)
				if p < pages && len(got) != pageSize || p == pages+1 && len(got) != 0 {
					t.Fatalf("page %d of %d has %d rows", p, pages, len(got))
				}
			}
			if total != b.Valid {
				t.Errorf("%d rows on the pages, %d valid", total, b.Valid)
			}
			if c.kind == "dd-payment" && moved == 0 {
				t.Error("no collection date moved by Bacs on any page")
			}
			// The page shows them: the first page of the batch's page.
			page := h.get(uma, fmt.Sprintf("/batches/%d?preview=%d", id, pages)).body
			if last, _ := previewFromFile(b, pages); !strings.Contains(page, "<td>"+last[len(last)-1].MerchantTxID+"</td>") {
				t.Errorf("the last preview page lacks %s", last[len(last)-1].MerchantTxID)
			}
		})
	}
}

// TestPreviewOfCSVWritesNoPageFile: a CSV's upload keeps where each page
// starts, not a copy of its rows; an XLSX keeps its page file.
func TestPreviewOfCSVWritesNoPageFile(t *testing.T) {
	h := newHarness(t)
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "p.csv", previewCSV("refund", "\n", ",", false, false, true, 120))
	b := h.batch(id)
	if _, err := os.Stat(previewPath(b)); !os.IsNotExist(err) {
		t.Errorf("a CSV upload wrote a preview page file: %v", err)
	}
	if st, err := os.Stat(previewAtPath(b)); err != nil || st.Size() > 200 {
		t.Errorf("preview index: %v (%d bytes)", err, st.Size())
	}
	page := h.get(uma, fmt.Sprintf("/batches/%d?preview=3", id)).body
	if !strings.Contains(page, "<td>PV-0119</td>") {
		t.Errorf("page 3 lacks the last row:\n%s", page)
	}
	xid := h.uploaded(uma, "refund", "r.xlsx", rejectsXLSX(t))
	if _, err := os.Stat(previewPath(h.batch(xid))); err != nil {
		t.Errorf("an XLSX upload has no preview page file: %v", err)
	}
}

// TestXLSXPreviewWithoutDuplicates reproduces a bug: an XLSX uploaded
// without a sheet chosen, with an id repeated, kept both copies in its
// preview (the rows refused at the end were looked for on sheet "", not on
// the sheet read), though neither is counted valid nor sent.
func TestXLSXPreviewWithoutDuplicates(t *testing.T) {
	h := newHarness(t)
	uma := h.signIn("uma")
	f := excelize.NewFile()
	defer f.Close()
	_ = f.SetSheetRow("Sheet1", "A1", &[]any{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency"})
	for i := range 6 {
		id := fmt.Sprintf("XD-%d", i)
		if i == 1 || i == 4 {
			id = "XD-DUP"
		}
		cell := fmt.Sprintf("A%d", i+2)
		_ = f.SetSheetRow("Sheet1", cell, &[]any{"ABC123", "TXS00001", "ORS00001", id, fmt.Sprintf("%d.00", 100*(i+1)), "USD"})
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	id := h.uploaded(uma, "refund", "dups.xlsx", buf.Bytes())
	b := h.batch(id)
	if b.Valid != 4 {
		t.Fatalf("valid %d", b.Valid)
	}
	rows, err := h.srv.preview(context.Background(), b, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.MerchantTxID)
	}
	if strings.Join(ids, " ") != "XD-0 XD-2 XD-3 XD-5" {
		t.Errorf("preview rows %v", ids)
	}
	for _, l := range b.Summary.Largest {
		if l.MerchantTxID == "XD-DUP" {
			t.Errorf("largest amounts name a refused copy: %+v", b.Summary.Largest)
		}
	}
}

// TestSparsePreviewKeepsPageFile: a CSV whose valid rows sit among
// thousands of refused ones would make a page read that much of the upload;
// such a batch keeps its preview in a page file (read once more at upload)
// — the same pages as read from the upload, repeated ids left out.
func TestSparsePreviewKeepsPageFile(t *testing.T) {
	h := newHarness(t)
	uma := h.signIn("uma")
	var b strings.Builder
	b.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
	for i := range 3000 {
		id, amount := fmt.Sprintf("SP-%04d", i), "1.001" // refused
		if i%23 == 0 || i > 2500 && i%3 == 0 {
			amount = fmt.Sprintf("%d.00", i+1)
		}
		if i == 23 || i == 2700 {
			id = "SP-DUP"
		}
		fmt.Fprintf(&b, "ABC123,TX%06d,OR%06d,%s,%s,USD\n", i, i, id, amount)
	}
	data := []byte(b.String())
	dense := h.batch(h.uploaded(uma, "refund", "dense.csv", data))
	h.srv.previewSpan = 2000
	sparse := h.batch(h.uploaded(uma, "refund", "sparse.csv", data))
	if _, err := os.Stat(previewAtPath(dense)); err != nil {
		t.Fatalf("the dense upload has no preview index: %v", err)
	}
	if _, err := os.Stat(previewAtPath(sparse)); !os.IsNotExist(err) {
		t.Errorf("the sparse upload has a preview index: %v", err)
	}
	if dense.Valid != sparse.Valid || sparse.Valid < 250 || !reflect.DeepEqual(dense.Summary.Largest, sparse.Summary.Largest) {
		t.Fatalf("valid %d vs %d; largest %v vs %v", dense.Valid, sparse.Valid, dense.Summary.Largest, sparse.Summary.Largest)
	}
	ctx := context.Background()
	for p := 1; p <= (dense.Valid+pageSize-1)/pageSize; p++ {
		want, ok, err := h.srv.previewAt(ctx, dense, p)
		if err != nil || !ok {
			t.Fatalf("page %d from the upload: %v %v", p, ok, err)
		}
		got, err := h.srv.preview(ctx, sparse, p)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("page %d from the page file:\n%+v\nfrom the upload:\n%+v", p, got, want)
		}
		for _, r := range got {
			if r.MerchantTxID == "SP-DUP" {
				t.Fatalf("page %d shows a repeated id", p)
			}
		}
	}
}
