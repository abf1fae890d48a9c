package writers

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/xuri/excelize/v2"
)

// edgeRows are rows whose text tests the lean writer's escaping against
// excelize's: XML metacharacters, white space at the ends, control
// characters, CR, invalid UTF-8, characters XML cannot hold, literal
// _xHHHH_ escapes, non-Latin text, a cell past Excel's 32,767 characters,
// and amounts at the edges of exactness.
func edgeRows(t testing.TB) []paybatch.ReconRow {
	texts := []string{
		`a&b<c>d"e'f`, " leading", "trailing ", "\ttab", "line\nbreak", "cr\rhere", "nul\x00bell\x07",
		"bad\xffutf8", "\uFFFE\uFFFF", "_x0041_", "_x005F_x0041_", "_xZZZZ_", "naïve 日本語 😀",
		strings.Repeat("é", 20000), strings.Repeat("😀x", 20000), "4111-1111-1111-1111 in text", "=1+1", "-", "@",
	}
	var rows []paybatch.ReconRow
	for i, s := range texts {
		rows = append(rows, paybatch.ReconRow{Category: paybatch.CatStatusMismatch, MerchantTxID: s,
			LedgerAmount: money(t, "0.10", "USD"), LedgerStatus: s, ProviderStatus: s, ProviderID: s, Reason: s,
			Source: paybatch.Source{File: s, Sheet: s, Row: i + 1}})
	}
	for i, a := range []*paybatch.Money{money(t, "-0.07", "USD"), money(t, "0", "JPY"), money(t, "100.000", "KWD"),
		money(t, "-99999999999.999", "KWD"), money(t, "999999999999.99", "USD"), money(t, "1000000000000.00", "USD"),
		money(t, "99999999999999", "JPY"), money(t, "123.4", "CLF")} {
		rows = append(rows, paybatch.ReconRow{Category: paybatch.CatAmountMismatch, MerchantTxID: fmt.Sprintf("AMT-%d", i),
			LedgerAmount: a, ProviderAmount: a,
			RequestedDate: time.Date(2027, 1, 1+i, 0, 0, 0, 0, time.UTC), ProviderDate: time.Date(2027, 1, 1+i%2, 0, 0, 0, 0, time.UTC)})
	}
	// the same minor units in other currencies, in one row and the next
	rows = append(rows,
		paybatch.ReconRow{Category: paybatch.CatCurrencyMismatch, MerchantTxID: "CUR-1",
			LedgerAmount: money(t, "1.00", "USD"), ProviderAmount: money(t, "100", "JPY")},
		paybatch.ReconRow{Category: paybatch.CatCurrencyMismatch, MerchantTxID: "CUR-2",
			LedgerAmount: money(t, "0.100", "KWD"), ProviderAmount: money(t, "0.100", "KWD")})
	return rows
}

// cellInfo is a cell as excelize reads it back.
type cellInfo struct {
	Raw, Shown string
	Type       string // "string", "number", "" (empty)
	NumFmt     int
	CustomFmt  string
	Bold       bool
	Quote      bool
}

func readBack(t *testing.T, path string) (map[string][][]cellInfo, *excelize.File) {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	out := map[string][][]cellInfo{}
	for _, sheet := range f.GetSheetList() {
		rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		var grid [][]cellInfo
		for r, row := range rows {
			var line []cellInfo
			for c := range max(len(row), len(ReconColumns)) {
				cell := cellName(c+1, r+1)
				var ci cellInfo
				ci.Raw, _ = f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
				ci.Shown, _ = f.GetCellValue(sheet, cell)
				typ, _ := f.GetCellType(sheet, cell)
				switch typ {
				case excelize.CellTypeSharedString, excelize.CellTypeInlineString:
					ci.Type = "string"
				case excelize.CellTypeUnset, excelize.CellTypeNumber:
					if ci.Raw != "" {
						ci.Type = "number"
					}
				default:
					ci.Type = fmt.Sprint(typ)
				}
				id, _ := f.GetCellStyle(sheet, cell)
				st, err := f.GetStyle(id)
				if err != nil {
					t.Fatal(err)
				}
				ci.NumFmt = st.NumFmt
				if st.CustomNumFmt != nil {
					ci.CustomFmt = *st.CustomNumFmt
				}
				ci.Bold = st.Font != nil && st.Font.Bold
				ci.Quote = id < len(f.Styles.CellXfs.Xf) && f.Styles.CellXfs.Xf[id].QuotePrefix != nil && *f.Styles.CellXfs.Xf[id].QuotePrefix
				line = append(line, ci)
			}
			grid = append(grid, line)
		}
		out[sheet] = grid
	}
	return out, f
}

// TestLeanXLSXEqualsExcelizeStream writes the same reports with the lean
// writer and with excelize's StreamWriter (the reference) and reads both
// back with excelize, cell by cell: value (raw and as shown), type, number
// format, bold, quote prefix; and per sheet the frozen pane, the column
// widths and the autofilter.
func TestLeanXLSXEqualsExcelizeStream(t *testing.T) {
	fix, exc, matched, rej := fixtureReport(t)
	edge := edgeRows(t)
	cases := []struct {
		name string
		rep  func() Report
		opts XLSXOptions
	}{
		{"fixture", func() Report {
			r := fix
			r.Exceptions, r.Matched, r.Rejected = seqOf(exc), seqOf(matched), seqOf(rej)
			return r
		}, XLSXOptions{}},
		{"fixture split", func() Report {
			r := fix
			r.Exceptions, r.Matched, r.Rejected = seqOf(exc), seqOf(matched), seqOf(rej)
			return r
		}, XLSXOptions{MaxRowsPerSheet: 4}},
		{"edge text and amounts", func() Report {
			r := fix
			r.Exceptions, r.Matched, r.Rejected = seqOf(edge), seqOf(matched), seqOf(rej)
			return r
		}, XLSXOptions{}},
		{"matched cap", func() Report {
			r := fix
			r.Exceptions, r.Matched, r.Rejected = seqOf(exc), seqOf(matched), nil
			return r
		}, XLSXOptions{MatchedRows: 2}},
		{"empty", func() Report { return Report{} }, XLSXOptions{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			lean, ref := filepath.Join(dir, "lean.xlsx"), filepath.Join(dir, "ref.xlsx")
			if err := WriteXLSX(context.Background(), lean, c.rep(), c.opts); err != nil {
				t.Fatal(err)
			}
			ro := c.opts
			ro.ExcelizeStream = true
			if err := WriteXLSX(context.Background(), ref, c.rep(), ro); err != nil {
				t.Fatal(err)
			}
			got, lf := readBack(t, lean)
			want, rf := readBack(t, ref)
			if !slices.Equal(lf.GetSheetList(), rf.GetSheetList()) {
				t.Fatalf("sheets: lean %q, reference %q", lf.GetSheetList(), rf.GetSheetList())
			}
			for _, sheet := range rf.GetSheetList() {
				g, w := got[sheet], want[sheet]
				if len(g) != len(w) {
					t.Errorf("%s: lean %d rows, reference %d", sheet, len(g), len(w))
					continue
				}
				for r := range w {
					for col := range max(len(w[r]), len(g[r])) {
						var gc, wc cellInfo
						if col < len(g[r]) {
							gc = g[r][col]
						}
						if col < len(w[r]) {
							wc = w[r][col]
						}
						if gc != wc {
							t.Errorf("%s!%s:\n lean      %+v\n reference %+v", sheet, cellName(col+1, r+1), short(gc), short(wc))
						}
					}
				}
				if sheet == SheetSummary {
					continue
				}
				gp, _ := lf.GetPanes(sheet)
				wp, _ := rf.GetPanes(sheet)
				if gp.Freeze != wp.Freeze || gp.YSplit != wp.YSplit || gp.TopLeftCell != wp.TopLeftCell || !gp.Freeze {
					t.Errorf("%s panes: lean %+v, reference %+v", sheet, gp, wp)
				}
				for col := 1; col <= len(ReconColumns); col++ {
					name, _ := excelize.ColumnNumberToName(col)
					gw, _ := lf.GetColWidth(sheet, name)
					ww, _ := rf.GetColWidth(sheet, name)
					if gw != ww {
						t.Errorf("%s column %s width: lean %v, reference %v", sheet, name, gw, ww)
					}
				}
			}
			// the autofilters' defined names (one per data sheet, same ranges)
			gd, wd := lf.GetDefinedName(), rf.GetDefinedName()
			if len(gd) != len(wd) || len(wd) == 0 {
				t.Errorf("defined names: lean %+v, reference %+v", gd, wd)
			}
			for i := range min(len(gd), len(wd)) {
				if gd[i].Name != wd[i].Name || gd[i].RefersTo != wd[i].RefersTo || gd[i].Scope != wd[i].Scope {
					t.Errorf("defined name %d: lean %+v, reference %+v", i, gd[i], wd[i])
				}
			}
		})
	}
}

func short(c cellInfo) cellInfo {
	if len(c.Raw) > 60 {
		c.Raw = c.Raw[:60] + fmt.Sprintf("…(%d bytes)", len(c.Raw))
	}
	if len(c.Shown) > 60 {
		c.Shown = c.Shown[:60] + fmt.Sprintf("…(%d bytes)", len(c.Shown))
	}
	return c
}

// TestLeanXLSXMatchedCapSaysSo: matched rows past the cap are left out and
// the Summary sheet says how many are in the workbook.
func TestLeanXLSXMatchedCapSaysSo(t *testing.T) {
	rep, _, matched, _ := fixtureReport(t)
	path := filepath.Join(t.TempDir(), "r.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{MatchedRows: 1}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _ := f.GetRows(SheetMatched)
	if len(rows) != 2 || rows[1][1] != matched[0].MerchantTxID {
		t.Errorf("Matched sheet = %q, want the header and the first matched row", rows)
	}
	exc, _ := f.GetRows(SheetExceptions)
	if want := 1 + int(HeadlineOf(rep.Summary).Exceptions); len(exc) != want {
		t.Errorf("Exceptions has %d rows, want every exception (%d)", len(exc), want)
	}
	sum, _ := f.GetRows(SheetSummary)
	var note string
	for _, r := range sum {
		if len(r) > 0 && strings.Contains(r[0], "first 1 of the 3 matched rows") {
			note = r[0]
		}
	}
	if note == "" {
		t.Errorf("Summary does not say the workbook holds 1 of 3 matched rows:\n%q", sum)
	}
	// no cap when every matched row fits
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{MatchedRows: 3}); err != nil {
		t.Fatal(err)
	}
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{MatchedRows: -1}); err == nil {
		t.Error("MatchedRows -1: no error")
	}
}

func TestAppendDecimal(t *testing.T) {
	for _, c := range []struct {
		minor int64
		exp   int
		want  string
	}{{12050, 2, "120.5"}, {1500, 0, "1500"}, {-110, 2, "-1.1"}, {0, 2, "0"}, {1, 3, "0.001"}, {-7, 2, "-0.07"},
		{100000, 3, "100"}, {99999999999999, 2, "999999999999.99"}, {10, 4, "0.001"}, {-9223372036854775807, 2, "-92233720368547758.07"}} {
		if got := string(appendDecimal(nil, c.minor, c.exp)); got != c.want {
			t.Errorf("appendDecimal(%d, %d) = %q, want %q", c.minor, c.exp, got, c.want)
		}
	}
}
