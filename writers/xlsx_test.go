package writers

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/xuri/excelize/v2"
)

var update = flag.Bool("update", false, "rewrite golden files")

func zipFiles(t testing.TB, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

func writeFixture(t *testing.T, opts XLSXOptions) (string, *excelize.File) {
	t.Helper()
	rep, _, _, _ := fixtureReport(t)
	path := filepath.Join(t.TempDir(), "report.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, opts); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f
}

func cellStyleFormat(t *testing.T, f *excelize.File, sheet, cell string) (string, int) {
	t.Helper()
	id, err := f.GetCellStyle(sheet, cell)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomNumFmt != nil {
		return *st.CustomNumFmt, st.NumFmt
	}
	return "", st.NumFmt
}

func raw(t *testing.T, f *excelize.File, sheet, cell string) string {
	t.Helper()
	v, err := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWriteXLSXSheetsValuesFormats(t *testing.T) {
	path, f := writeFixture(t, XLSXOptions{})
	if got, want := f.GetSheetList(), []string{"Summary", "Exceptions", "Matched", "Rejected"}; !slices.Equal(got, want) {
		t.Fatalf("sheets = %q, want %q", got, want)
	}
	_, exc, matched, rej := fixtureReport(t)

	hdr, _ := f.GetRows("Exceptions")
	if !slices.Equal(hdr[0], ReconColumns) {
		t.Errorf("Exceptions header = %q", hdr[0])
	}
	if len(hdr) != 1+len(exc) {
		t.Errorf("Exceptions has %d rows, want %d", len(hdr), 1+len(exc))
	}
	// Amounts: numeric cells holding exactly Money.String(), formatted with
	// the currency's decimals.
	cases := []struct {
		sheet, cell, raw, fmt, cur string
	}{
		{"Exceptions", "C2", "120.5", "#,##0.00", "USD"},
		{"Exceptions", "F2", "102.5", "#,##0.00", "USD"},
		{"Exceptions", "C3", "1500", "#,##0", "JPY"},
		{"Exceptions", "C4", "12.345", "#,##0.000", "KWD"},
		{"Exceptions", "F5", "0.07", "#,##0.00", "GBP"},
		{"Exceptions", "C6", "999999999999.99", "#,##0.00", "USD"},
		{"Exceptions", "C7", "-1.1", "#,##0.00", "EUR"},
		{"Matched", "C3", "1.001", "#,##0.000", "KWD"},
		{"Matched", "F4", "123456789", "#,##0", "JPY"},
	}
	for _, c := range cases {
		if got := raw(t, f, c.sheet, c.cell); got != c.raw {
			t.Errorf("%s!%s = %q, want %q", c.sheet, c.cell, got, c.raw)
		}
		if got, _ := cellStyleFormat(t, f, c.sheet, c.cell); got != c.fmt {
			t.Errorf("%s!%s format = %q, want %q", c.sheet, c.cell, got, c.fmt)
		}
		typ, _ := f.GetCellType(c.sheet, c.cell)
		if typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
			t.Errorf("%s!%s type = %v, want number", c.sheet, c.cell, typ)
		}
		col, row, _ := excelize.CellNameToCoordinates(c.cell)
		cur, _ := excelize.CoordinatesToCellName(col+1, row)
		if got := raw(t, f, c.sheet, cur); got != c.cur {
			t.Errorf("%s!%s currency = %q, want %q", c.sheet, cur, got, c.cur)
		}
	}
	// Formatted as finance sees it.
	if v, _ := f.GetCellValue("Exceptions", "C6"); v != "999,999,999,999.99" {
		t.Errorf("formatted C6 = %q", v)
	}
	// Card number in free text is masked; ids and rows intact.
	if v := raw(t, f, "Exceptions", "J3"); v != "05 Do not honour; card 411111******1111" {
		t.Errorf("reason = %q", v)
	}
	if v := raw(t, f, "Exceptions", "M3"); v != "3" {
		t.Errorf("source row = %q", v)
	}
	if v := raw(t, f, "Rejected", "E3"); v != "550000******5559" {
		t.Errorf("rejected value = %q", v)
	}
	rrows, _ := f.GetRows("Rejected")
	if len(rrows) != 1+len(rej) || !slices.Equal(rrows[0], RejectedColumns) {
		t.Errorf("Rejected rows = %q", rrows)
	}
	if v := raw(t, f, "Rejected", "F2"); !strings.Contains(v, "not a plain decimal number") {
		t.Errorf("rejected reason = %q", v)
	}
	mrows, _ := f.GetRows("Matched")
	if len(mrows) != 1+len(matched) {
		t.Errorf("Matched rows = %d", len(mrows))
	}

	// Header: bold, frozen, autofilter.
	files := zipFiles(t, path)
	for i, sheet := range []string{"Exceptions", "Matched", "Rejected"} {
		id, _ := f.GetCellStyle(sheet, "A1")
		st, _ := f.GetStyle(id)
		if st.Font == nil || !st.Font.Bold {
			t.Errorf("%s header is not bold", sheet)
		}
		panes, _ := f.GetPanes(sheet)
		if !panes.Freeze || panes.YSplit != 1 {
			t.Errorf("%s panes = %+v", sheet, panes)
		}
		xml := string(files["xl/worksheets/sheet"+string(rune('2'+i))+".xml"])
		if !regexp.MustCompile(`<autoFilter ref="\$?A\$?1:\$?[A-Z]+\$?\d+"`).MatchString(xml) {
			t.Errorf("%s has no autofilter", sheet)
		}
		if !strings.Contains(xml, `customWidth="1"`) {
			t.Errorf("%s has no column widths", sheet)
		}
	}

	// Summary: run, counts, totals, difference, date cell.
	sv := func(cell string) string { return raw(t, f, "Summary", cell) }
	rows, _ := f.GetRows("Summary")
	find := func(label string) int {
		for i, r := range rows {
			if len(r) > 0 && r[0] == label {
				return i + 1
			}
		}
		t.Fatalf("Summary has no %q row", label)
		return 0
	}
	if v, _ := f.GetCellValue("Summary", "B3"); v != "2026-11-22 06:30:00" {
		t.Errorf("run started = %q", v)
	}
	if got, _ := cellStyleFormat(t, f, "Summary", "B3"); got != "yyyy-mm-dd hh:mm:ss" {
		t.Errorf("date format = %q", got)
	}
	if typ, _ := f.GetCellType("Summary", "B3"); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
		t.Errorf("run started is text, want a date cell")
	}
	r := find("batch")
	if sv(cellName(2, r)) != "/data/refunds-2026-11-21.xlsx" || sv(cellName(3, r)) != "1234" ||
		sv(cellName(4, r)) != "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" {
		t.Errorf("batch input row = %q", rows[r-1])
	}
	r = find("ledger")
	if sv(cellName(2, r)) != "=ledger.csv" {
		t.Errorf("ledger path = %q", sv(cellName(2, r)))
	}
	if sv(cellName(2, find("matched"))) != "3" || sv(cellName(2, find("rejected_before_send"))) != "12" ||
		sv(cellName(2, find("pending"))) != "1" || sv(cellName(2, find("Total"))) != "20" {
		t.Errorf("counts wrong: %q", rows)
	}
	if got, _ := f.GetCellValue("Summary", cellName(2, find("Match rate"))); got != "15.00%" {
		t.Errorf("match rate = %q", got)
	}
	// Per-currency ledger vs provider: USD ledger 120.50+999999999999.99+10.00, provider 102.50+10.00.
	r = find("USD")
	// 15 significant digits: more than maxExactMinor, so exact text.
	if sv(cellName(2, r)) != "1000000000130.49" || sv(cellName(3, r)) != "112.50" || sv(cellName(4, r)) != "1000000000017.99" {
		t.Errorf("USD difference row = %q", rows[r-1])
	}
	if typ, _ := f.GetCellType("Summary", cellName(2, r)); typ != excelize.CellTypeSharedString {
		t.Errorf("15-digit total is not text: %v", typ)
	}
	if got, _ := cellStyleFormat(t, f, "Summary", cellName(3, r)); got != "#,##0.00" {
		t.Errorf("difference format = %q", got)
	}
	r = find("GBP")
	if v, _ := f.GetCellValue("Summary", cellName(4, r)); v != "-0.07" {
		t.Errorf("GBP difference = %q", v)
	}
}

func TestWriteXLSXChart(t *testing.T) {
	path, _ := writeFixture(t, XLSXOptions{})
	files := zipFiles(t, path)
	chart, ok := files["xl/charts/chart1.xml"]
	if !ok {
		t.Fatal("no xl/charts/chart1.xml in the workbook")
	}
	for _, want := range []string{"<barChart>", `<barDir val="col">`, "Summary!$A$", "Summary!$B$", "Rows by category"} {
		if !bytes.Contains(chart, []byte(want)) {
			t.Errorf("chart1.xml lacks %q", want)
		}
	}
	if !bytes.Contains(files["xl/worksheets/sheet1.xml"], []byte("<drawing")) {
		t.Error("Summary sheet has no drawing (the chart's anchor)")
	}
}

func TestWriteXLSXNeutralisesInjection(t *testing.T) {
	path, f := writeFixture(t, XLSXOptions{})
	files := zipFiles(t, path)
	for name, b := range files {
		if strings.HasPrefix(name, "xl/worksheets/") && (bytes.Contains(b, []byte("<f>")) || bytes.Contains(b, []byte("<f "))) {
			t.Errorf("%s contains a formula element", name)
		}
	}
	// Each corpus string is in the sheet as text (inline or shared),
	// quote-prefixed, and reads back unchanged.
	for i, s := range injectionCorpus {
		row := 7 + i
		for _, col := range []int{2, 5, 8, 9, 10, 11, 12} {
			cell := cellName(col, row)
			if got := raw(t, f, "Exceptions", cell); got != s {
				t.Errorf("Exceptions!%s = %q, want %q", cell, got, s)
			}
			typ, _ := f.GetCellType("Exceptions", cell)
			if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
				t.Errorf("Exceptions!%s type %v, want a string", cell, typ)
			}
			if f, _ := f.GetCellFormula("Exceptions", cell); f != "" {
				t.Errorf("Exceptions!%s has formula %q", cell, f)
			}
			_, nf := cellStyleFormat(t, f, "Exceptions", cell)
			if nf != 49 {
				t.Errorf("Exceptions!%s numFmt %d, want 49 (text)", cell, nf)
			}
		}
	}
	if !bytes.Contains(files["xl/styles.xml"], []byte(`quotePrefix="true"`)) {
		t.Error("styles.xml has no quotePrefix cell format")
	}
}

func TestWriteXLSXSplitsPastRowLimit(t *testing.T) {
	var exc []paybatch.ReconRow
	for i := range 7 {
		exc = append(exc, paybatch.ReconRow{Category: paybatch.CatPending, MerchantTxID: "E" + string(rune('0'+i))})
	}
	var m []paybatch.ReconRow
	for i := range 3 {
		m = append(m, paybatch.ReconRow{Category: paybatch.CatMatched, MerchantTxID: "M" + string(rune('0'+i))})
	}
	rep := Report{Exceptions: seqOf(exc), Matched: seqOf(m)}
	path := filepath.Join(t.TempDir(), "r.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{MaxRowsPerSheet: 4}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []string{"Summary", "Exceptions", "Exceptions (2)", "Exceptions (3)", "Matched", "Rejected"}
	if got := f.GetSheetList(); !slices.Equal(got, want) {
		t.Fatalf("sheets = %q, want %q", got, want)
	}
	var ids []string
	for _, sh := range want[1:4] {
		rows, _ := f.GetRows(sh)
		if len(rows) > 4 || !slices.Equal(rows[0], ReconColumns) {
			t.Errorf("%s: %d rows, header %q", sh, len(rows), rows[0])
		}
		for _, r := range rows[1:] {
			ids = append(ids, r[1])
		}
	}
	if want := []string{"E0", "E1", "E2", "E3", "E4", "E5", "E6"}; !slices.Equal(ids, want) {
		t.Errorf("exception ids across sheets = %q, want %q", ids, want)
	}
	rows, _ := f.GetRows("Matched")
	if len(rows) != 4 {
		t.Errorf("Matched (exactly at the limit) has %d rows, want 4 and no continuation", len(rows))
	}
}

func TestWriteXLSXAtomicOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.xlsx")
	if err := os.WriteFile(path, []byte("previous report"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := io.ErrUnexpectedEOF
	rep := Report{Matched: func(yield func(paybatch.ReconRow, error) bool) {
		if !yield(paybatch.ReconRow{Category: paybatch.CatMatched, MerchantTxID: "A"}, nil) {
			return
		}
		yield(paybatch.ReconRow{}, boom)
	}}
	err := WriteXLSX(context.Background(), path, rep, XLSXOptions{})
	if err == nil || !strings.Contains(err.Error(), "Matched row 2") {
		t.Fatalf("err = %v, want the row error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WriteXLSX(ctx, path, Report{}, XLSXOptions{}); err == nil {
		t.Fatal("cancelled context: no error")
	}
	b, _ := os.ReadFile(path)
	if string(b) != "previous report" {
		t.Errorf("report replaced after a failed write: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("leftover files: %v", ents)
	}
}

// TestWriteXLSXGolden renders every sheet as read back by excelize (values
// as formatted for display) and compares with testdata/golden/*.csv.
func TestWriteXLSXGolden(t *testing.T) {
	_, f := writeFixture(t, XLSXOptions{})
	for _, sheet := range f.GetSheetList() {
		rows, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		_ = w.WriteAll(rows)
		golden := filepath.Join("testdata", "golden", "xlsx_"+strings.ToLower(sheet)+".csv")
		if *update {
			_ = os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("sheet %s differs from %s:\n got:\n%s\nwant:\n%s", sheet, golden, b.Bytes(), want)
		}
	}
}
