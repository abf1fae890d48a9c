package readers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

var update = flag.Bool("update", false, "rewrite the generated XLSX fixtures and the golden files in testdata/")

// genFixtures writes the excelize-made fixtures. They are committed; run
// `go test ./readers -run TestGolden -update` to regenerate them (and the
// golden outputs) after changing this function.
func genFixtures(t *testing.T) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// gen_refund.xlsx: header on row 2 (row 1 blank), numeric amounts with
	// binary artefacts, text and numeric ids, rich text, a second sheet.
	f := excelize.NewFile()
	must(f.SetSheetName("Sheet1", "Refunds"))
	s := "Refunds"
	must(f.SetSheetRow(s, "A2", &[]any{"Terminal", "Transaction Ref", "Order Ref", "Merchant Txn ID", "Amount", "Currency", "Notes"}))
	type r struct {
		id   any
		amt  func(cell string) error
		cur  string
		note string
	}
	tenth := 0.1 // at run time, so 0.1+0.2 is the double 0.30000000000000004, as a spreadsheet formula computes it
	rows := []r{
		{"000123", func(c string) error { return f.SetCellFloat(s, c, 49.99, 15, 64) }, "USD", "49.990000000000002 stored"},
		{"000124", func(c string) error { return f.SetCellFloat(s, c, tenth+0.2, -1, 64) }, "EUR", "=0.1+0.2"},
		{12345, func(c string) error { return f.SetCellInt(s, c, 1000) }, "JPY", "numeric id"},
		{"000126", func(c string) error { return f.SetCellFloat(s, c, 1.005, -1, 64) }, "KWD", "three decimals"},
		{"000127", func(c string) error { return f.SetCellFloat(s, c, 49.995, -1, 64) }, "GBP", "over-precise"},
		{"000128", func(c string) error { return f.SetCellStr(s, c, "12.30") }, "USD", "amount typed as text"},
		{"000129", func(c string) error { return f.SetCellFloat(s, c, 1234567.89, 17, 64) }, "USD", "big, 17 digits"},
		{"000130", func(c string) error { return f.SetCellFloat(s, c, -5, -1, 64) }, "USD", "negative"},
		{"000123", func(c string) error { return f.SetCellFloat(s, c, 1, -1, 64) }, "USD", "duplicate id"},
	}
	for i, row := range rows {
		n := i + 3
		if i >= 4 {
			n++ // a blank row 7 in the middle
		}
		must(f.SetSheetRow(s, fmt.Sprintf("A%d", n), &[]any{"ABC123", "TX8A3F2C", "OR7B9E1D", row.id}))
		must(row.amt(fmt.Sprintf("E%d", n)))
		must(f.SetCellStr(s, fmt.Sprintf("F%d", n), row.cur))
		must(f.SetCellStr(s, fmt.Sprintf("G%d", n), row.note))
	}
	must(f.SetCellRichText(s, "D13", []excelize.RichTextRun{{Text: "rich-"}, {Text: "id", Font: &excelize.Font{Bold: true}}}))
	must(f.SetSheetRow(s, "A13", &[]any{"TERM01", "TX000001", "OR000001"}))
	must(f.SetCellFloat(s, "E13", 7, -1, 64))
	must(f.SetCellStr(s, "F13", "USD"))
	_, err := f.NewSheet("Capture")
	must(err)
	must(f.SetSheetRow("Capture", "A1", &[]any{"merchant_transaction_id", "amount", "currency", "terminal", "transaction_reference_id", "order_reference_id"}))
	must(f.SetSheetRow("Capture", "A2", &[]any{"cap-1", 10.5, "GBP", "XYZ789", "TX000002", "OR000002"}))
	must(f.SaveAs(filepath.Join("testdata", "gen_refund.xlsx")))

	// gen_dd_1900.xlsx and gen_dd_1904.xlsx: serial dates in each date
	// system, ISO and UK text dates, a past date, a date with a time.
	for _, sys := range []struct {
		name string
		is04 bool
		// serial of 2027-01-15 in this system
		serial int
	}{{"gen_dd_1900.xlsx", false, 46402}, {"gen_dd_1904.xlsx", true, 44940}} {
		f := excelize.NewFile()
		if sys.is04 {
			must(f.SetWorkbookProps(&excelize.WorkbookPropsOptions{Date1904: &sys.is04}))
		}
		dateStyle, err := f.NewStyle(&excelize.Style{NumFmt: 14})
		must(err)
		s := "Sheet1"
		must(f.SetSheetRow(s, "A1", &[]any{"Mandate", "Merchant Txn ID", "Amount", "Collection Date", "Description"}))
		must(f.SetSheetRow(s, "A2", &[]any{"M01741EJ519Y51P3XGL", "dd-1", 25.32, sys.serial, "serial"}))
		must(f.SetSheetRow(s, "A3", &[]any{"M01741EJ519Y51P3XGM", "dd-2", 100, "2027-01-16", "ISO text"}))
		must(f.SetSheetRow(s, "A4", &[]any{"M01741EJ519Y51P3XGN", "dd-3", 7.5, "17/01/2027", "UK text"}))
		must(f.SetSheetRow(s, "A5", &[]any{"M01741EJ519Y51P3XGP", "dd-4", 1, sys.serial - 1000, "past serial"}))
		must(f.SetSheetRow(s, "A6", &[]any{"M01741EJ519Y51P3XGQ", "dd-5", 1, float64(sys.serial) + 0.5, "serial with a time"}))
		must(f.SetSheetRow(s, "A7", &[]any{"M01741EJ519Y51P3XGR", "dd-6", 1, "01/02/27", "two-digit year"}))
		must(f.SetCellStyle(s, "D2", "D7", dateStyle))
		must(f.SaveAs(filepath.Join("testdata", sys.name)))
	}
}

// fixtures lists every committed XLSX with the kind and sheet it is read as.
var fixtures = []struct {
	file  string
	kind  paybatch.Kind
	sheet string
}{
	{"gen_refund.xlsx", paybatch.KindRefund, ""},
	{"gen_refund.xlsx", paybatch.KindCapture, "Capture"},
	{"gen_dd_1900.xlsx", paybatch.KindDDPayment, ""},
	{"gen_dd_1904.xlsx", paybatch.KindDDPayment, ""},
	{"lo/lo_refund.xlsx", paybatch.KindRefund, ""},
	{"lo/lo_refund.xlsx", paybatch.KindRefund, "Second"},
	{"lo/lo_dd_1904.xlsx", paybatch.KindDDPayment, ""},
	{"lo/lo_csv.xlsx", paybatch.KindDDPayment, ""},
}

// render is the golden form of one batch: every row's outcome, one line each.
func render(t *testing.T, path string, o Options) string {
	t.Helper()
	b, err := openPath(t, path, o)
	if err != nil {
		return "open error: " + err.Error() + "\n"
	}
	defer b.Close()
	var sb strings.Builder
	fmt.Fprintf(&sb, "sheet %q date1904=%v unknown=%q\n", b.sheet, b.date1904, b.Unknown())
	for in, err := range b.All(context.Background()) {
		if err != nil {
			var re *paybatch.RowError
			if !errors.As(err, &re) {
				t.Fatalf("%s: fatal: %v", path, err)
			}
			fmt.Fprintf(&sb, "row %d REJECT column=%q value=%q: %v\n", re.Source.Row, re.Column, re.Value, re.Err)
			continue
		}
		fmt.Fprintf(&sb, "row %d OK id=%q amount=%s %s", in.Source.Row, in.MerchantTxID, in.Amount, in.Amount.Currency)
		if in.Terminal != "" {
			fmt.Fprintf(&sb, " terminal=%s tx=%s order=%s", in.Terminal, in.TransactionRef, in.OrderRef)
		}
		if !in.CollectionDate.IsZero() {
			fmt.Fprintf(&sb, " mandate=%s date=%s", in.Mandate, in.CollectionDate.Format("2006-01-02"))
		}
		sb.WriteString("\n")
	}
	return strings.ReplaceAll(sb.String(), path, filepath.Base(path))
}

func TestGoldenXLSX(t *testing.T) {
	if *update {
		genFixtures(t)
	}
	for _, fx := range fixtures {
		name := strings.NewReplacer("/", "_", ".xlsx", "").Replace(fx.file) + "_" + string(fx.kind)
		if fx.sheet != "" {
			name += "_" + fx.sheet
		}
		t.Run(name, func(t *testing.T) {
			o := opts(fx.kind)
			o.Sheet = fx.sheet
			got := render(t, filepath.Join("testdata", fx.file), o)
			golden := filepath.Join("testdata", "golden", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", fx.file, golden, got, want)
			}
		})
	}
}

// TestXLSXMatchesExcelize reads every fixture sheet with the fast reader and
// with excelize (Rows, RawCellValue) and compares every non-blank row cell
// by cell, including whether a cell is numeric.
func TestXLSXMatchesExcelize(t *testing.T) {
	files := map[string]bool{}
	for _, fx := range fixtures {
		files[fx.file] = true
	}
	paths := []string{}
	for file := range files {
		paths = append(paths, filepath.Join("testdata", file))
	}
	// And a workbook written cell type by cell type with the StreamWriter
	// (inline strings), including entities, a control character, booleans,
	// a formula with a cached value and one without.
	stream := filepath.Join(t.TempDir(), "stream.xlsx")
	if err := os.WriteFile(stream, xlsxBytes(t, func(f *excelize.File) error {
		sw, err := f.NewStreamWriter("Sheet1")
		if err != nil {
			return err
		}
		rows := [][]any{
			{"a&b<c>\"q'", "line\rbreak", "ünï €", true, false},
			{49.99, 0.1, int64(-7), 1e21, 1.5e-7},
			{excelize.Cell{Formula: "1+1", Value: 2}, excelize.Cell{Formula: "A1&\"x\""}, excelize.Cell{Value: "  padded  "}},
			{nil, nil, "after gap"},
		}
		for i, r := range rows {
			if err := sw.SetRow(fmt.Sprintf("A%d", i*2+1), r); err != nil { // rows 1, 3, 5, 7: gaps between
				return err
			}
		}
		return sw.Flush()
	}), 0o644); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, stream)
	for _, path := range paths {
		file := filepath.Base(path)
		xf, err := excelize.OpenFile(path, excelize.Options{RawCellValue: true, UnzipSizeLimit: 64 << 20, UnzipXMLSizeLimit: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, sheet := range xf.GetSheetList() {
			t.Run(file+"/"+sheet, func(t *testing.T) {
				want := map[int][]cell{}
				rows, err := xf.Rows(sheet)
				if err != nil {
					t.Fatal(err)
				}
				for n := 1; rows.Next(); n++ {
					cols, err := rows.Columns(excelize.Options{RawCellValue: true})
					if err != nil {
						t.Fatal(err)
					}
					var cells []cell
					blank := true
					for i, v := range cols {
						ref, _ := excelize.CoordinatesToCellName(i+1, n)
						typ, err := xf.GetCellType(sheet, ref)
						if err != nil {
							t.Fatal(err)
						}
						if typ == excelize.CellTypeBool { // the reader shows booleans as the user sees them
							v = map[string]string{"1": "TRUE", "0": "FALSE"}[v]
						}
						formula, err := xf.GetCellFormula(sheet, ref)
						if err != nil {
							t.Fatal(err)
						}
						cells = append(cells, cell{s: v, num: v != "" && (typ == excelize.CellTypeNumber || typ == excelize.CellTypeUnset), formula: formula != ""})
						blank = blank && strings.TrimSpace(v) == "" && formula == ""
					}
					if !blank {
						want[n] = trimCells(cells)
					}
				}
				rows.Close()

				fh, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer fh.Close()
				st, _ := fh.Stat()
				src, err := openXLSX(fh, st.Size(), path, sheet)
				if err != nil {
					t.Fatal(err)
				}
				defer src.close()
				got := map[int][]cell{}
				for {
					n, cells, err := src.next()
					if err != nil {
						break
					}
					got[n] = trimCells(slices.Clone(cells))
				}
				if len(want) == 0 {
					t.Fatal("excelize found no rows: the comparison would be empty")
				}
				if len(got) != len(want) {
					t.Errorf("fast reader found %d non-blank rows, excelize %d", len(got), len(want))
				}
				for n, w := range want {
					if !slices.Equal(got[n], w) {
						t.Errorf("row %d:\n fast     %+v\n excelize %+v", n, got[n], w)
					}
				}
			})
		}
		xf.Close()
	}
}

func trimCells(c []cell) []cell {
	for len(c) > 0 && c[len(c)-1].s == "" && !c[len(c)-1].formula {
		c = c[:len(c)-1]
	}
	return c
}

func TestLongNumericID(t *testing.T) {
	data := xlsxBytes(t, func(f *excelize.File) error {
		if err := f.SetSheetRow("Sheet1", "A1", &[]any{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency"}); err != nil {
			return err
		}
		if err := f.SetSheetRow("Sheet1", "A2", &[]any{"ABC123", "TX8A3F2C", "OR7B9E1D", 123456789012345680, 1, "USD"}); err != nil {
			return err
		}
		return f.SetSheetRow("Sheet1", "A3", &[]any{"ABC123", "TX8A3F2C", "OR7B9E1D", 123456789012345, 1, "USD"})
	})
	ins, rej := readAll(t, writeFile(t, "long.xlsx", data), opts(paybatch.KindRefund))
	if len(rej) != 1 || rej[0].Source.Row != 2 || !errors.Is(rej[0], paybatch.ErrBadField) {
		t.Fatalf("rejects %v", rej)
	}
	if len(ins) != 1 || ins[0].MerchantTxID != "123456789012345" {
		t.Fatalf("instructions %+v", ins)
	}
}

func TestHiddenFirstSheet(t *testing.T) {
	data := xlsxBytes(t, func(f *excelize.File) error {
		if err := f.SetSheetRow("Sheet1", "A1", &[]any{"lookup", "table"}); err != nil {
			return err
		}
		if _, err := f.NewSheet("Batch"); err != nil {
			return err
		}
		if err := f.SetSheetRow("Batch", "A1", &[]any{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency"}); err != nil {
			return err
		}
		if err := f.SetSheetRow("Batch", "A2", &[]any{"ABC123", "TX8A3F2C", "OR7B9E1D", "m-1", 2.5, "GBP"}); err != nil {
			return err
		}
		f.SetActiveSheet(1)
		return f.SetSheetVisible("Sheet1", false)
	})
	ins, rej := readAll(t, writeFile(t, "hidden.xlsx", data), opts(paybatch.KindRefund))
	if len(ins) != 1 || len(rej) != 0 || ins[0].Source.Sheet != "Batch" || ins[0].Amount.String() != "2.50" {
		t.Fatalf("got %+v %v", ins, rej)
	}
}

func TestSheetsListsVisibleSheets(t *testing.T) {
	dir := t.TempDir()
	f := excelize.NewFile()
	if _, err := f.NewSheet("Collections"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.NewSheet("Hidden"); err != nil {
		t.Fatal(err)
	}
	if err := f.SetSheetVisible("Hidden", false); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "b.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	got, err := Sheets(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Sheet1", "Collections"}; !slices.Equal(got, want) {
		t.Fatalf("Sheets = %q, want %q", got, want)
	}
	csvPath := filepath.Join(dir, "b.csv")
	if err := os.WriteFile(csvPath, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Sheets(csvPath); err != nil || got != nil {
		t.Fatalf("Sheets(csv) = %q, %v; want nil, nil", got, err)
	}
}
