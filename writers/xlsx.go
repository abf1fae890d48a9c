package writers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/xuri/excelize/v2"
)

// ExcelMaxRows is the number of rows an Excel worksheet holds, header included.
const ExcelMaxRows = 1_048_576

// Sheet names of the workbook. Continuation sheets are "Matched (2)", …
const (
	SheetSummary    = "Summary"
	SheetExceptions = "Exceptions"
	SheetMatched    = "Matched"
	SheetRejected   = "Rejected"
)

// Report is everything a report is made of. The row sequences are ranged
// over once per writer call (WriteXLSX and WriteCSV each range once), so a
// caller writing both formats passes sequences that can be ranged again
// (e.g. each range re-runs the query).
type Report struct {
	Run        paybatch.RunInfo
	Summary    paybatch.Summary
	Exceptions iter.Seq2[paybatch.ReconRow, error] // every non-matched row
	Matched    iter.Seq2[paybatch.ReconRow, error]
	Rejected   iter.Seq2[paybatch.RowError, error] // may be nil
}

// XLSXOptions tunes WriteXLSX.
type XLSXOptions struct {
	// MaxRowsPerSheet is the row limit of one data sheet, header included;
	// 0 means Excel's 1,048,576. Rows past it continue on "Matched (2)", ….
	MaxRowsPerSheet int
	// MatchedRows is the most matched rows the workbook holds (0: every
	// one). Exceptions and rejects are always all in it; matched rows past
	// the cap are only in the CSV and Parquet exports, and the Summary
	// sheet says so. The policy for reports too big to open comfortably.
	MatchedRows int64
	// ExcelizeStream writes the data sheets with excelize's StreamWriter
	// instead of the lean writer (sheetxml.go): the reference the lean
	// writer is tested and benchmarked against. Same cells, values, types
	// and formats; about 3-4x slower.
	ExcelizeStream bool
}

// maxRows is the row limit of a data sheet, header included.
func (o XLSXOptions) maxRows() (int, error) {
	maxRows := o.MaxRowsPerSheet
	if maxRows <= 0 || maxRows > ExcelMaxRows {
		maxRows = ExcelMaxRows
	}
	if maxRows < 2 {
		return 0, fmt.Errorf("MaxRowsPerSheet %d leaves no room for data under the header", o.MaxRowsPerSheet)
	}
	if o.MatchedRows < 0 {
		return 0, fmt.Errorf("MatchedRows %d: want 0 (every row) or a positive cap", o.MatchedRows)
	}
	return maxRows, nil
}

// matchedCap is the cap on matched rows (-1: none).
func (o XLSXOptions) matchedCap() int64 {
	if o.MatchedRows <= 0 {
		return -1
	}
	return o.MatchedRows
}

// ReconColumns is the header of the Exceptions and Matched sheets and of the
// per-category CSV exports.
var ReconColumns = []string{
	"category", "merchant_transaction_id",
	"ledger_amount", "ledger_currency", "ledger_status",
	"provider_amount", "provider_currency", "provider_status",
	"provider_id", "reason", "source_file", "source_sheet", "source_row",
	"requested_date", "provider_date", "date_moved",
}

var reconWidths = []float64{22, 28, 16, 10, 16, 16, 10, 18, 26, 48, 32, 14, 11, 14, 14, 11}

// RejectedColumns is the header of the Rejected sheet and rejected.csv.
var RejectedColumns = []string{"file", "sheet", "row", "column", "value", "reason"}

var rejectedWidths = []float64{32, 14, 8, 24, 28, 70}

// WriteXLSX writes the report workbook to path atomically: Summary (run,
// totals, match rate, differences, chart), Exceptions, Matched and Rejected,
// streamed so memory stays flat whatever the row count.
func WriteXLSX(ctx context.Context, path string, rep Report, opts XLSXOptions) error {
	if !opts.ExcelizeStream {
		maxRows, err := opts.maxRows()
		if err != nil {
			return fmt.Errorf("xlsx report %s: %w", path, err)
		}
		err = WriteFileAtomic(path, func(w io.Writer) error {
			return writeLeanXLSX(ctx, w, rep, maxRows, opts.matchedCap())
		})
		if err != nil {
			return fmt.Errorf("xlsx report %s: %w", path, err)
		}
		return nil
	}
	f := excelize.NewFile()
	defer f.Close()
	if err := buildWorkbook(ctx, f, rep, opts); err != nil {
		return fmt.Errorf("xlsx report %s: %w", path, err)
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		_, err := f.WriteTo(w)
		return err
	})
}

// WriteSummaryXLSX writes a workbook holding only the Summary sheet (what is
// e-mailed when the full report is over the attachment cap).
func WriteSummaryXLSX(w io.Writer, run paybatch.RunInfo, sum paybatch.Summary) error {
	f := excelize.NewFile()
	defer f.Close()
	st, err := newStyles(f)
	if err != nil {
		return err
	}
	if err := f.SetSheetName("Sheet1", SheetSummary); err != nil {
		return err
	}
	if err := writeSummarySheet(f, st, run, sum); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}

// startWorkbook names the first sheet Summary and writes it (with the note
// on matched rows left out of the workbook), returning the styles the data
// sheets use; both workbook writers start this way.
func startWorkbook(f *excelize.File, rep Report, matchedCap int64) (*styles, error) {
	st, err := newStyles(f)
	if err != nil {
		return nil, err
	}
	if err := f.SetSheetName("Sheet1", SheetSummary); err != nil {
		return nil, err
	}
	if err := writeSummarySheet(f, st, rep.Run, rep.Summary); err != nil {
		return nil, fmt.Errorf("summary sheet: %w", err)
	}
	if err := writeCapNote(f, st, rep.Summary, matchedCap); err != nil {
		return nil, fmt.Errorf("summary sheet: %w", err)
	}
	return st, nil
}

func buildWorkbook(ctx context.Context, f *excelize.File, rep Report, opts XLSXOptions) error {
	maxRows, err := opts.maxRows()
	if err != nil {
		return err
	}
	st, err := startWorkbook(f, rep, opts.matchedCap())
	if err != nil {
		return err
	}
	vals := make([]any, len(ReconColumns))
	for _, part := range []struct {
		name string
		rows iter.Seq2[paybatch.ReconRow, error]
		cap  int64
	}{{SheetExceptions, rep.Exceptions, -1}, {SheetMatched, rep.Matched, opts.matchedCap()}} {
		ss := &splitSheet{f: f, st: st, base: part.name, header: ReconColumns, widths: reconWidths, max: maxRows}
		if err := ss.open(); err != nil {
			return err
		}
		if part.rows != nil {
			n := 0
			for r, err := range part.rows {
				if err != nil {
					return fmt.Errorf("%s row %d: %w", part.name, n+1, err)
				}
				if part.cap >= 0 && int64(n) >= part.cap {
					break
				}
				if n++; n&4095 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				reconValues(vals, r, st)
				if err := ss.add(vals); err != nil {
					return err
				}
			}
		}
		if err := ss.close(); err != nil {
			return err
		}
	}
	ss := &splitSheet{f: f, st: st, base: SheetRejected, header: RejectedColumns, widths: rejectedWidths, max: maxRows}
	if err := ss.open(); err != nil {
		return err
	}
	if rep.Rejected != nil {
		rv := make([]any, len(RejectedColumns))
		n := 0
		for re, err := range rep.Rejected {
			if err != nil {
				return fmt.Errorf("%s row %d: %w", SheetRejected, n+1, err)
			}
			if n++; n&4095 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			rejectedValues(rv, re, st)
			if err := ss.add(rv); err != nil {
				return err
			}
		}
	}
	if err := ss.close(); err != nil {
		return err
	}
	return ctx.Err()
}

// reconValues fills vals with the cells of one reconciliation row.
func reconValues(vals []any, r paybatch.ReconRow, st *styles) {
	vals[0] = string(r.Category)
	vals[1] = st.text(r.MerchantTxID, false)
	vals[2], vals[3] = st.amount(r.LedgerAmount)
	vals[4] = st.text(r.LedgerStatus, true)
	vals[5], vals[6] = st.amount(r.ProviderAmount)
	vals[7] = st.text(r.ProviderStatus, true)
	vals[8] = st.text(r.ProviderID, false)
	vals[9] = st.text(r.Reason, true)
	vals[10] = st.text(r.Source.File, false)
	vals[11] = st.text(r.Source.Sheet, false)
	if r.Source.Row > 0 {
		vals[12] = r.Source.Row
	} else {
		vals[12] = nil
	}
	vals[13], vals[14], vals[15] = dateText(r.RequestedDate), dateText(r.ProviderDate), movedText(r)
}

// dateText is a date as the report shows it ("2027-04-05"; nil when unknown).
func dateText(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Format("2006-01-02")
}

// movedText flags a row whose provider used another date than the one asked for.
func movedText(r paybatch.ReconRow) any {
	if r.DateMoved() {
		return "moved"
	}
	return nil
}

func rejectedValues(vals []any, re paybatch.RowError, st *styles) {
	vals[0] = st.text(re.Source.File, false)
	vals[1] = st.text(re.Source.Sheet, false)
	if re.Source.Row > 0 {
		vals[2] = re.Source.Row
	} else {
		vals[2] = nil
	}
	vals[3] = st.text(re.Column, false)
	vals[4] = st.text(re.Value, true)
	reason := ""
	if re.Err != nil {
		reason = re.Err.Error()
	}
	vals[5] = st.text(reason, true)
}

// splitSheet streams rows into base, continuing on "base (2)", "base (3)", …
// whenever a sheet reaches max rows (header included).
type splitSheet struct {
	f      *excelize.File
	st     *styles
	base   string
	header []string
	widths []float64
	max    int

	part int
	name string
	sw   *excelize.StreamWriter
	row  int
}

func (s *splitSheet) open() error {
	s.part++
	s.name = s.base
	if s.part > 1 {
		s.name = fmt.Sprintf("%s (%d)", s.base, s.part)
	}
	if _, err := s.f.NewSheet(s.name); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	sw, err := s.f.NewStreamWriter(s.name)
	if err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	for i, w := range s.widths {
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return err
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	hdr := make([]any, len(s.header))
	for i, h := range s.header {
		hdr[i] = excelize.Cell{StyleID: s.st.header, Value: h}
	}
	if err := sw.SetRow("A1", hdr); err != nil {
		return err
	}
	s.sw, s.row = sw, 1
	return nil
}

func (s *splitSheet) add(vals []any) error {
	if s.row >= s.max {
		if err := s.close(); err != nil {
			return err
		}
		if err := s.open(); err != nil {
			return err
		}
	}
	s.row++
	cell, err := excelize.CoordinatesToCellName(1, s.row)
	if err != nil {
		return err
	}
	if err := s.sw.SetRow(cell, vals); err != nil {
		return fmt.Errorf("sheet %s row %d: %w", s.name, s.row, err)
	}
	return nil
}

func (s *splitSheet) close() error {
	last, err := excelize.CoordinatesToCellName(len(s.header), s.row)
	if err != nil {
		return err
	}
	if err := s.f.AutoFilter(s.name, "A1:"+last, nil); err != nil {
		return fmt.Errorf("sheet %s autofilter: %w", s.name, err)
	}
	if err := s.sw.Flush(); err != nil {
		return fmt.Errorf("sheet %s: %w", s.name, err)
	}
	s.sw = nil
	return nil
}

// styles holds the workbook's style ids.
type styles struct {
	f       *excelize.File
	header  int
	title   int
	quoted  int // text with the quote prefix: shown and kept as text, never evaluated
	date    int
	percent int
	amounts map[int]int // exponent → style id
}

func newStyles(f *excelize.File) (*styles, error) {
	st := &styles{f: f, amounts: map[int]int{}}
	var err error
	if st.header, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}}}); err != nil {
		return nil, err
	}
	if st.title, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true, Size: 14}}); err != nil {
		return nil, err
	}
	if st.quoted, err = f.NewStyle(&excelize.Style{NumFmt: 49}); err != nil { // "@" text
		return nil, err
	}
	// excelize's Style has no quote-prefix field; set the attribute on the
	// cell format it just created so spreadsheets treat the cell as typed
	// text (the same as typing a leading apostrophe).
	if f.Styles == nil || f.Styles.CellXfs == nil || st.quoted >= len(f.Styles.CellXfs.Xf) {
		return nil, errors.New("excelize style table not available")
	}
	yes := true
	f.Styles.CellXfs.Xf[st.quoted].QuotePrefix = &yes
	dateFmt := "yyyy-mm-dd hh:mm:ss"
	if st.date, err = f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt}); err != nil {
		return nil, err
	}
	if st.percent, err = f.NewStyle(&excelize.Style{NumFmt: 10}); err != nil { // 0.00%
		return nil, err
	}
	return st, nil
}

func (st *styles) amountStyle(exp int) int {
	if id, ok := st.amounts[exp]; ok {
		return id
	}
	nf := amountFormat(exp)
	id, err := st.f.NewStyle(&excelize.Style{CustomNumFmt: &nf})
	if err != nil { // only on a corrupt style table; fall back to the default format
		id = 0
	}
	st.amounts[exp] = id
	return id
}

// amount returns the amount cell and the currency cell of m (nil, nil when
// there is no amount).
func (st *styles) amount(m *paybatch.Money) (any, any) {
	if m == nil {
		return nil, nil
	}
	v, numeric := amountValue(*m)
	if !numeric {
		return v, m.Currency.Code()
	}
	return excelize.Cell{StyleID: st.amountStyle(m.Currency.Exponent()), Value: v}, m.Currency.Code()
}

// text returns the cell for a text value from the data: free text has card
// numbers masked; text a spreadsheet would evaluate is written as a
// quote-prefixed text cell. Streamed strings are inline strings, never <f>.
func (st *styles) text(s string, free bool) any {
	if s == "" {
		return nil
	}
	if free {
		s = paybatch.MaskCardNumbers(s)
	}
	if NeedsNeutralising(s) {
		return excelize.Cell{StyleID: st.quoted, Value: s}
	}
	return s
}
