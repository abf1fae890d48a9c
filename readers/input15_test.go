package readers

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

const ddHeader = "mandate,merchant_transaction_id,collection_date,amount\n"

// Issue #15: a CSV whose lines end in CR alone (old Mac exports) was one
// record: refused quoting the whole file as "headers found".
func TestCROnlyLineEndings(t *testing.T) {
	body := strings.ReplaceAll(ddHeader+"M1,a,2027-01-20,1.00\nM1,b,2027-01-20,2.50\n", "\n", "\r")
	ins, rejects := readAll(t, writeFile(t, "cr.csv", []byte(body)), opts(paybatch.KindDDPayment))
	if len(rejects) != 0 || len(ins) != 2 {
		t.Fatalf("%d rows, rejects %v", len(ins), rejects)
	}
	if ins[1].MerchantTxID != "b" || ins[1].Amount.Minor != 250 || ins[1].Source.Row != 3 {
		t.Errorf("second row %+v", ins[1])
	}
}

// Issue #15: records with more or fewer fields than the header are
// rejected, naming the counts; in a ';' file with --decimal-comma the
// amount 1.234,56 is one field.
func TestFieldCounts(t *testing.T) {
	body := ddHeader + "M1,a,2027-01-20,1,234.56\nM1,b,2027-01-20\nM1,c,2027-01-20,3.00\n"
	ins, rejects := readAll(t, writeFile(t, "fc.csv", []byte(body)), opts(paybatch.KindDDPayment))
	if len(ins) != 1 || ins[0].MerchantTxID != "c" || len(rejects) != 2 {
		t.Fatalf("ins %+v rejects %v", ins, rejects)
	}
	for i, want := range []string{"row 2, value \"M1,a,2027-01-20,1,234.56\": bad field: 5 fields where the header has 4", "row 3, value \"M1,b,2027-01-20\": bad field: 3 fields where the header has 4"} {
		if !strings.Contains(rejects[i].Error(), want) {
			t.Errorf("reject %d = %v, want %q", i, rejects[i], want)
		}
	}
	o := opts(paybatch.KindDDPayment)
	o.DecimalComma = true
	ins, rejects = readAll(t, writeFile(t, "semi.csv", []byte(strings.ReplaceAll(ddHeader, ",", ";")+"M1;a;2027-01-20;1.234,56\n")), o)
	if len(rejects) != 0 || len(ins) != 1 || ins[0].Amount.Minor != 123456 {
		t.Fatalf("ins %+v rejects %v", ins, rejects)
	}
}

// Leading and trailing zeros are never significant.
func TestAmountZeros(t *testing.T) {
	gbp := paybatch.MustCurrency("GBP")
	for _, s := range []string{"10." + strings.Repeat("0", 18), strings.Repeat("0", 15) + "10", strings.Repeat("0", 20) + "10.00" + strings.Repeat("0", 20)} {
		m, err := parseAmountText(s, gbp, false)
		if err != nil || m.Minor != 1000 {
			t.Errorf("%q: %v %v, want 10.00", s, m, err)
		}
	}
}

// Issue #15: ids that differ only in case are both valid, and a warning.
func TestCaseOnlyIDsWarn(t *testing.T) {
	p := writeFile(t, "c.csv", []byte(ddHeader+"M1,DupCase,2027-01-20,1.00\nM1,dupcase,2027-01-20,1.00\nM1,DUPCASE,2027-01-20,1.00\nM1,other,2027-01-20,1.00\nM1,Ünï,2027-01-20,1.00\nM1,üNÏ,2027-01-20,1.00\n"))
	rep, err := Validate(context.Background(), []string{p}, opts(paybatch.KindDDPayment))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid != 6 || len(rep.Warnings) != 2 {
		t.Fatalf("valid %d warnings %+v", rep.Valid, rep.Warnings)
	}
	w := rep.Warnings[0]
	if strings.Join(w.Values, " ") != "DupCase dupcase DUPCASE" || w.Sources[2].Row != 4 || w.Column != "merchant_transaction_id" {
		t.Errorf("warning %+v", w)
	}
}

func xlsxFile(t *testing.T, build func(f *excelize.File) error) string {
	return writeFile(t, "b.xlsx", xlsxBytes(t, build))
}

// Issue #15: an XLSX formula cell in a column paybatch reads is reported
// as a formula with its cached value and refused unless accepted; one with
// no cached value is never read as "empty".
func TestFormulaCells(t *testing.T) {
	p := xlsxFile(t, func(f *excelize.File) error {
		sw, err := f.NewStreamWriter("Sheet1")
		if err != nil {
			return err
		}
		for i, r := range [][]any{
			{"mandate", "merchant_transaction_id", "collection_date", "amount"},
			{"M1", "a", "2027-01-20", 10},
			{"M1", "b", "2027-01-20", excelize.Cell{Formula: "D2*2", Value: 20}},
			{"M1", "c", "2027-01-20", excelize.Cell{Formula: "D2*3"}},
		} {
			if err := sw.SetRow(fmt.Sprintf("A%d", i+1), r); err != nil {
				return err
			}
		}
		return sw.Flush()
	})
	ins, rejects := readAll(t, p, opts(paybatch.KindDDPayment))
	if len(ins) != 1 || len(rejects) != 2 {
		t.Fatalf("ins %+v rejects %v", ins, rejects)
	}
	if msg := rejects[0].Error(); !strings.Contains(msg, `row 3, column "amount", value "20"`) || !strings.Contains(msg, "formula") || !strings.Contains(msg, "--accept-formula-values") {
		t.Errorf("reject %q", msg)
	}
	if msg := rejects[1].Error(); !strings.Contains(msg, "row 4") || !strings.Contains(msg, "formula with no computed value") {
		t.Errorf("reject %q", msg)
	}
	o := opts(paybatch.KindDDPayment)
	o.AcceptFormulaValues = true
	ins, rejects = readAll(t, p, o)
	if len(ins) != 2 || ins[1].Amount.Minor != 2000 || len(rejects) != 1 || !strings.Contains(rejects[0].Error(), "no computed value") {
		t.Fatalf("accepted: ins %+v rejects %v", ins, rejects)
	}
}

// Issue #15: a merged cell was called "missing value".
func TestMergedCells(t *testing.T) {
	p := xlsxFile(t, func(f *excelize.File) error {
		f.SetSheetRow("Sheet1", "A1", &[]any{"mandate", "merchant_transaction_id", "collection_date", "amount"})
		f.SetSheetRow("Sheet1", "A2", &[]any{"M1", "a", "2027-01-20", "1.00"})
		f.SetSheetRow("Sheet1", "A3", &[]any{"", "b", "2027-01-20", "2.00"})
		return f.MergeCell("Sheet1", "A2", "A3")
	})
	rep, err := Validate(context.Background(), []string{p}, opts(paybatch.KindDDPayment))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rejected != 1 || !strings.Contains(rep.Rejects[0].Error(), "merged cells A2:A3") {
		t.Fatalf("rejects %v", rep.Rejects)
	}
}

// Issue #15: an all-hidden workbook was read from its first hidden sheet;
// a header not on the sheet read did not suggest --sheet.
func TestHiddenAndWrongSheet(t *testing.T) {
	data := xlsxBytes(t, func(f *excelize.File) error {
		f.SetSheetRow("Sheet1", "A1", &[]any{"mandate", "merchant_transaction_id", "collection_date", "amount"})
		f.NewSheet("Other")
		return f.SetSheetRow("Other", "A1", &[]any{"x"})
	})
	// excelize keeps one sheet visible; hide them all in workbook.xml
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, zf := range zr.File {
		rc, _ := zf.Open()
		body, _ := io.ReadAll(rc)
		rc.Close()
		if zf.Name == "xl/workbook.xml" {
			body = bytes.ReplaceAll(body, []byte("<sheet "), []byte(`<sheet state="hidden" `))
		}
		w, _ := zw.Create(zf.Name)
		w.Write(body)
	}
	zw.Close()
	p := writeFile(t, "hidden.xlsx", buf.Bytes())
	_, err = openPath(t, p, opts(paybatch.KindDDPayment))
	if err == nil || !strings.Contains(err.Error(), "every sheet of the workbook is hidden") || !strings.Contains(err.Error(), `"Sheet1", "Other"`) {
		t.Fatalf("err %v", err)
	}
	p = xlsxFile(t, func(f *excelize.File) error {
		f.SetSheetRow("Sheet1", "A1", &[]any{"notes"})
		f.SetSheetRow("Sheet1", "A2", &[]any{"see the Batch sheet"})
		f.NewSheet("Batch")
		return f.SetSheetRow("Batch", "A1", &[]any{"mandate", "merchant_transaction_id", "collection_date", "amount"})
	})
	_, err = openPath(t, p, opts(paybatch.KindDDPayment))
	if !errors.Is(err, paybatch.ErrMissingColumn) || !strings.Contains(err.Error(), "--sheet") || !strings.Contains(err.Error(), `"Sheet1", "Batch"`) {
		t.Fatalf("err %v", err)
	}
}

// OpenReader reads a batch from any io.ReaderAt (one read, no path).
func TestOpenReader(t *testing.T) {
	data := []byte(ddHeader + "M1,a,2027-01-20,1.00\n")
	b, err := OpenReader(bytes.NewReader(data), int64(len(data)), "upload.csv", opts(paybatch.KindDDPayment))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n := 0
	for in, err := range b.All(context.Background()) {
		if err != nil || in.Source.File != "upload.csv" {
			t.Fatalf("%+v %v", in, err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d rows", n)
	}
}

// Validate opens each file once and hashes a CSV with the bytes its rows
// are read from: the hash is the file's, in every encoding and as XLSX.
func TestValidateHashesInOnePass(t *testing.T) {
	utf16 := []byte{0xFF, 0xFE}
	for _, r := range ddHeader + "M1,a,2027-01-20,1.00\r\n" {
		utf16 = append(utf16, byte(r), byte(r>>8))
	}
	big := []byte(ddHeader)
	for i := range 20000 {
		big = append(big, fmt.Sprintf("M1,id%06d,2027-01-20,1.00\n", i)...)
	}
	for name, data := range map[string][]byte{
		"plain.csv": []byte(ddHeader + "M1,a,2027-01-20,1.00\n"),
		"bom.csv":   append([]byte("\ufeff"), ddHeader+"M1,a,2027-01-20,1.00"...),
		"cr.csv":    []byte(strings.ReplaceAll(ddHeader+"M1,a,2027-01-20,1.00\n", "\n", "\r")),
		"utf16.csv": utf16,
		"big.csv":   big,
		"b.xlsx": xlsxBytes(t, func(f *excelize.File) error {
			f.SetSheetRow("Sheet1", "A1", &[]any{"mandate", "merchant_transaction_id", "collection_date", "amount"})
			return f.SetSheetRow("Sheet1", "A2", &[]any{"M1", "a", "2027-01-20", "1.00"})
		}),
	} {
		p := writeFile(t, name, data)
		rep, err := Validate(context.Background(), []string{p}, opts(paybatch.KindDDPayment))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := FileSHA256(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Files[0].SHA256 != want || rep.Valid == 0 {
			t.Errorf("%s: sha256 %s, want %s (valid %d)", name, rep.Files[0].SHA256, want, rep.Valid)
		}
	}
}
