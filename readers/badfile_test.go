package readers

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

func xlsxBytes(t *testing.T, build func(f *excelize.File) error, o ...excelize.Options) []byte {
	t.Helper()
	f := excelize.NewFile()
	if err := build(f); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf, o...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipBombXLSX is a real workbook whose sheet XML inflates to 80 MB of
// whitespace (≈ 80 KB compressed), beyond the 64 MiB floor of the limit.
func zipBombXLSX(t *testing.T) []byte {
	good := xlsxBytes(t, func(f *excelize.File) error { return f.SetCellStr("Sheet1", "A1", "x") })
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		w, err := zw.Create(zf.Name)
		if err != nil {
			t.Fatal(err)
		}
		if zf.Name == "xl/worksheets/sheet1.xml" {
			io.WriteString(w, "<worksheet><sheetData>")
			sp := bytes.Repeat([]byte(" "), 1<<20)
			for range 80 {
				w.Write(sp)
			}
			io.WriteString(w, "</sheetData></worksheet>")
			continue
		}
		rc, _ := zf.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	zw.Close()
	return out.Bytes()
}

func TestBadFiles(t *testing.T) {
	refund := func(f *excelize.File) error {
		return f.SetSheetRow("Sheet1", "A1", &[]any{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency"})
	}
	goodXLSX, err := os.ReadFile(filepath.Join("testdata", "gen_refund.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	wide := xlsxBytes(t, func(f *excelize.File) error {
		sw, err := f.NewStreamWriter("Sheet1")
		if err != nil {
			return err
		}
		row := make([]any, 16384)
		for i := range row {
			row[i] = "col"
		}
		copy(row, []any{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency"})
		if err := sw.SetRow("A1", row); err != nil {
			return err
		}
		return sw.Flush()
	})
	wideCSV := strings.Repeat("x,", 16383) + "x\n"
	tests := []struct {
		name  string
		data  []byte // nil: the path does not exist
		dir   bool
		o     func(*Options)
		want  error
		words []string
	}{
		{name: "missing", words: []string{"not found"}},
		{name: "directory", dir: true, words: []string{"directory"}},
		{name: "empty", data: []byte{}, words: []string{"empty"}},
		{name: "blank lines only", data: []byte("\r\n\r\n  \n"), words: []string{"no rows"}},
		{name: "header only CSV", data: []byte(refundHeader), words: []string{"no rows follow"}},
		{name: "header only XLSX", data: xlsxBytes(t, refund), words: []string{"no rows follow", `sheet "Sheet1"`}},
		{name: "empty XLSX", data: xlsxBytes(t, func(*excelize.File) error { return nil }), words: []string{"no header row"}},
		{name: "renamed PDF", data: []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), words: []string{"PDF"}},
		{name: "truncated XLSX (malformed zip)", data: goodXLSX[:len(goodXLSX)/2], words: []string{"damaged"}},
		{name: "zip that is not a workbook", data: func() []byte {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			w, _ := zw.Create("readme.txt")
			io.WriteString(w, "hello")
			zw.Close()
			return b.Bytes()
		}(), words: []string{"not an XLSX"}},
		{name: "password protected", data: xlsxBytes(t, refund, excelize.Options{Password: "secret"}), words: []string{"password"}},
		{name: "zip bomb", data: zipBombXLSX(t), words: []string{"zip bomb"}},
		{name: "16384 columns XLSX", data: wide, words: []string{"16384 columns", "XFD"}},
		{name: "16384 columns CSV", data: []byte(wideCSV), words: []string{"16384 columns"}},
		{name: "binary", data: []byte("\x00\x01\x02garbage\x00"), words: []string{"binary"}},
		{name: "unterminated quote", data: []byte(refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,\"m-1,1,USD\n"), words: []string{"row 2", "quoted value is never closed"}},
		{name: "no such sheet", data: goodXLSX, o: func(o *Options) { o.Sheet = "Nope" }, words: []string{`"Nope"`, `"Refunds", "Capture"`}},
		{name: "over the size cap", data: []byte(refundHeader + "ABC123,TX8A3F2C,OR7B9E1D,m-1,1,USD\n"), o: func(o *Options) { o.MaxFileSize = 64 }, words: []string{"limit"}},
		{name: "missing column", data: []byte("a;b;c\n1;2;3\n"), want: paybatch.ErrMissingColumn, words: []string{`"a", "b", "c"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "batch.xlsx")
			switch {
			case tt.dir:
				os.Mkdir(p, 0o755)
			case tt.data != nil:
				if err := os.WriteFile(p, tt.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			o := opts(paybatch.KindRefund)
			if tt.o != nil {
				tt.o(&o)
			}
			rep, err := Validate(context.Background(), []string{p}, o)
			want := tt.want
			if want == nil {
				want = paybatch.ErrUnusableFile
			}
			if !errors.Is(err, want) {
				t.Fatalf("got report %+v, err %v; want %v", rep, err, want)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, p) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tt.words {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
}
