package writers

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/paybatch/paybatch"
	"github.com/xuri/excelize/v2"
)

// Headline is the one-line outcome of a run, as used in the e-mail subject.
type Headline struct {
	Rows       int64   // ids reconciled (all categories)
	Exceptions int64   // ids not matched
	Matched    int64   // ids matched
	MatchRate  float64 // Summary.MatchRate
}

// HeadlineOf counts the rows of a summary.
func HeadlineOf(s paybatch.Summary) Headline {
	var h Headline
	for c, ct := range s.Categories {
		h.Rows += ct.Count
		if c == paybatch.CatMatched {
			h.Matched += ct.Count
		}
	}
	h.Exceptions = h.Rows - h.Matched
	h.MatchRate = s.MatchRate
	return h
}

// RunInputs lists a run's inputs as the report shows them, each with its
// role: the batch files, the provider side (journal or results) and the
// ledger.
func RunInputs(run paybatch.RunInfo) []paybatch.InputFile {
	var out []paybatch.InputFile
	add := func(in paybatch.InputFile, role string) {
		if in.Role == "" {
			in.Role = role
		}
		out = append(out, in)
	}
	for _, in := range run.Inputs {
		add(in, "batch")
	}
	if run.ProviderSide != nil {
		add(*run.ProviderSide, "provider side")
	}
	if run.Ledger != nil {
		add(*run.Ledger, "ledger")
	}
	return out
}

// currencies returns the sorted currency codes present in any of ts.
func currencies(ts ...paybatch.Totals) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range ts {
		for code := range t {
			if !seen[code] {
				seen[code] = true
				out = append(out, code)
			}
		}
	}
	sort.Strings(out)
	return out
}

// setSummaryAmount writes one amount on the Summary sheet. Where the amount
// is under maxExactMinor it is written as its exact decimal text into
// the cell's XML (excelize's SetCellDefault writes numeric text verbatim),
// so the Summary never goes through a float at all.
func (st *styles) setSummaryAmount(sheet, cell string, m paybatch.Money) error {
	if m.Minor >= maxExactMinor || m.Minor <= -maxExactMinor {
		return st.f.SetCellStr(sheet, cell, m.String())
	}
	if err := st.f.SetCellDefault(sheet, cell, m.String()); err != nil {
		return err
	}
	return st.f.SetCellStyle(sheet, cell, cell, st.amountStyle(m.Currency.Exponent()))
}

func runID(run paybatch.RunInfo) string {
	if run.ID != "" {
		return run.ID
	}
	return run.DefaultID()
}

// setSummaryText writes text from the data (file paths) with the same
// neutralisation as the data sheets.
func (st *styles) setSummaryText(sheet, cell, s string) error {
	if err := st.f.SetCellStr(sheet, cell, s); err != nil {
		return err
	}
	if NeedsNeutralising(s) {
		return st.f.SetCellStyle(sheet, cell, cell, st.quoted)
	}
	return nil
}

func cellName(col, row int) string {
	c, _ := excelize.CoordinatesToCellName(col, row)
	return c
}

// writeSummarySheet fills the Summary sheet with the normal (non-stream)
// API — it is small — and adds the chart of counts by category.
func writeSummarySheet(f *excelize.File, st *styles, run paybatch.RunInfo, sum paybatch.Summary) error {
	const sh = SheetSummary
	set := func(col, row int, v any) error { return f.SetCellValue(sh, cellName(col, row), v) }
	hdr := func(row int, names ...string) error {
		for i, n := range names {
			if err := set(i+1, row, n); err != nil {
				return err
			}
		}
		return f.SetCellStyle(sh, cellName(1, row), cellName(len(names), row), st.header)
	}
	for col, w := range map[string]float64{"A": 30, "B": 40, "C": 20, "D": 66, "E": 32} {
		if err := f.SetColWidth(sh, col, col, w); err != nil {
			return err
		}
	}
	if err := set(1, 1, "paybatch reconciliation report"); err != nil {
		return err
	}
	if err := f.SetCellStyle(sh, "A1", "A1", st.title); err != nil {
		return err
	}
	row := 3
	kv := []struct {
		k string
		v any
	}{
		{"Run started (UTC)", nil},
		{"Run", runID(run)},
		{"Provider", string(run.Provider)},
		{"Kind", string(run.Kind)},
		{"paybatch version", run.Version},
	}
	for _, e := range kv {
		if err := set(1, row, e.k); err != nil {
			return err
		}
		if e.k == "Run started (UTC)" {
			if !run.Started.IsZero() {
				if err := set(2, row, run.Started.UTC()); err != nil {
					return err
				}
				if err := f.SetCellStyle(sh, cellName(2, row), cellName(2, row), st.date); err != nil {
					return err
				}
			}
		} else if err := st.setSummaryText(sh, cellName(2, row), e.v.(string)); err != nil {
			return err
		}
		row++
	}

	row++
	if err := hdr(row, "Input", "File", "Rows", "SHA-256"); err != nil {
		return err
	}
	row++
	for _, in := range RunInputs(run) {
		if err := set(1, row, in.Role); err != nil {
			return err
		}
		if err := st.setSummaryText(sh, cellName(2, row), paybatch.MaskCardNumbers(in.Path)); err != nil {
			return err
		}
		if err := set(3, row, in.Rows); err != nil {
			return err
		}
		if err := st.setSummaryText(sh, cellName(4, row), in.SHA256); err != nil {
			return err
		}
		row++
	}

	// Counts by category: the chart's source.
	row++
	if err := hdr(row, "Category", "Count"); err != nil {
		return err
	}
	row++
	first := row
	for _, c := range paybatch.Categories {
		if err := set(1, row, string(c)); err != nil {
			return err
		}
		if err := set(2, row, sum.Categories[c].Count); err != nil {
			return err
		}
		row++
	}
	last := row - 1
	h := HeadlineOf(sum)
	for _, e := range []struct {
		k string
		v int64
	}{{"Total", h.Rows}, {"Exceptions (not matched)", h.Exceptions}} {
		if err := set(1, row, e.k); err != nil {
			return err
		}
		if err := set(2, row, e.v); err != nil {
			return err
		}
		if err := f.SetCellStyle(sh, cellName(1, row), cellName(2, row), st.header); err != nil {
			return err
		}
		row++
	}
	if err := set(1, row, "Match rate"); err != nil {
		return err
	}
	// MatchRate is a ratio, not money: a float is the right type here.
	if err := set(2, row, sum.MatchRate); err != nil {
		return err
	}
	if err := f.SetCellStyle(sh, cellName(2, row), cellName(2, row), st.percent); err != nil {
		return err
	}
	row += 2

	// Totals per category and currency.
	if err := hdr(row, "Category", "Currency", "Total"); err != nil {
		return err
	}
	row++
	for _, c := range paybatch.Categories {
		ct := sum.Categories[c]
		for _, code := range currencies(ct.Totals) {
			if err := set(1, row, string(c)); err != nil {
				return err
			}
			if err := set(2, row, code); err != nil {
				return err
			}
			if err := st.setSummaryAmount(sh, cellName(3, row), ct.Totals[code]); err != nil {
				return err
			}
			row++
		}
	}
	row++

	// Ledger vs provider.
	if err := hdr(row, "Currency", "Ledger total", "Provider total", "Difference (ledger - voids - provider)", "Voids (done, no provider amount)"); err != nil {
		return err
	}
	row++
	diff := sum.Difference()
	for _, code := range currencies(sum.LedgerTotals, sum.ProviderTotals, sum.NoProviderAmount) {
		if err := set(1, row, code); err != nil {
			return err
		}
		for i, t := range []paybatch.Totals{sum.LedgerTotals, sum.ProviderTotals, diff, sum.NoProviderAmount} {
			m, ok := t[code]
			if !ok {
				m = paybatch.Money{Currency: diff[code].Currency}
			}
			if err := st.setSummaryAmount(sh, cellName(2+i, row), m); err != nil {
				return err
			}
		}
		row++
	}

	ref := func(col string, r int) string { return "Summary!$" + col + "$" + strconv.Itoa(r) }
	return f.AddChart(sh, "F3", &excelize.Chart{
		Type: excelize.Col,
		Series: []excelize.ChartSeries{{
			Name:       "Summary!$B$" + strconv.Itoa(first-1),
			Categories: ref("A", first) + ":" + ref("A", last)[len("Summary!"):],
			Values:     ref("B", first) + ":" + ref("B", last)[len("Summary!"):],
		}},
		Title:     excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: "Rows by category"}}},
		Legend:    excelize.ChartLegend{Position: "none"},
		Dimension: excelize.ChartDimension{Width: 640, Height: 360},
		PlotArea:  excelize.ChartPlotArea{ShowVal: true},
	})
}

// writeCapNote says on the Summary sheet, under what is there, that the
// workbook holds only the first cap matched rows (nothing when every row is
// in it).
func writeCapNote(f *excelize.File, st *styles, sum paybatch.Summary, cap int64) error {
	matched := sum.Categories[paybatch.CatMatched].Count
	if cap < 0 || matched <= cap {
		return nil
	}
	rows, err := f.GetRows(SheetSummary)
	if err != nil {
		return err
	}
	row := len(rows) + 2
	note := fmt.Sprintf("This workbook holds every exception and the first %d of the %d matched rows (the cap set by --xlsx-matched-rows / report.xlsx_matched_rows); every matched row is in the CSV and Parquet exports (matched.csv, matched.parquet).", cap, matched)
	if err := f.SetCellValue(SheetSummary, cellName(1, row), "Matched rows in this workbook"); err != nil {
		return err
	}
	if err := f.SetCellStyle(SheetSummary, cellName(1, row), cellName(1, row), st.header); err != nil {
		return err
	}
	if err := f.SetCellValue(SheetSummary, cellName(2, row), cap); err != nil {
		return err
	}
	return f.SetCellValue(SheetSummary, cellName(1, row+1), note)
}
