package writers

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"

	"github.com/paybatch/paybatch"
)

// RejectedCSV is the file name of the reader rejects export.
const RejectedCSV = "rejected.csv"

// WriteCSV writes one CSV per category ("<category>.csv", e.g.
// "amount_mismatch.csv", every category, header only when empty) and, when
// rep.Rejected is set, "rejected.csv", into dir. It returns the paths
// written, in paybatch.Categories order. Amounts are exact strings in major
// units ("1234.50", "1500", "1.001") beside their currency; text from the
// data is neutralised (a leading apostrophe before = + - @ TAB CR) and card
// numbers in free text are masked. All files are written under temporary
// names and renamed into place only once every one of them is complete.
func WriteCSV(ctx context.Context, dir string, rep Report) (paths []string, err error) {
	e, err := CreateCSVExport(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Abort()
		}
	}()
	for _, part := range []struct {
		name string
		rows func(yield func(paybatch.ReconRow, error) bool)
	}{{SheetExceptions, rep.Exceptions}, {SheetMatched, rep.Matched}} {
		if part.rows == nil {
			continue
		}
		n := 0
		for r, err := range part.rows {
			n++
			if err != nil {
				return nil, fmt.Errorf("csv export: %s row %d: %w", part.name, n, err)
			}
			if n&4095 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			if err := e.Write(r); err != nil {
				return nil, fmt.Errorf("csv export: %s row %d: %w", part.name, n, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return e.Commit(rep.Rejected)
}

// CSVExport writes the per-category CSV files of WriteCSV one row at a
// time, so that a caller already reading the rows for another output (the
// workbook) writes the CSV files from the same read: CreateCSVExport, Write
// every row, then Commit (or Abort). The files are byte for byte those of
// WriteCSV for the same rows.
type CSVExport struct {
	dir   string
	files map[paybatch.Category]*csvOut
	order []*csvOut
	rec   []string
}

type csvOut struct {
	af *atomicFile
	cw *csv.Writer
}

// CreateCSVExport starts the export into dir: a temporary file with its
// header for every category.
func CreateCSVExport(dir string) (*CSVExport, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("csv export: %w", err)
	}
	e := &CSVExport{dir: dir, files: map[paybatch.Category]*csvOut{}, rec: make([]string, len(ReconColumns))}
	for _, c := range paybatch.Categories {
		o, err := e.open(string(c)+".csv", ReconColumns)
		if err != nil {
			e.Abort()
			return nil, err
		}
		e.files[c] = o
	}
	return e, nil
}

func (e *CSVExport) open(name string, header []string) (*csvOut, error) {
	af, err := createAtomic(filepath.Join(e.dir, name))
	if err != nil {
		return nil, err
	}
	o := &csvOut{af: af, cw: csv.NewWriter(af.w)}
	e.order = append(e.order, o)
	return o, o.cw.Write(header)
}

// Write adds r to its category's file.
func (e *CSVExport) Write(r paybatch.ReconRow) error {
	o, ok := e.files[r.Category]
	if !ok {
		return fmt.Errorf("%s: unknown category %q", r.MerchantTxID, r.Category)
	}
	reconRecord(e.rec, r)
	return o.cw.Write(e.rec)
}

// Commit writes rejected.csv when rejected is not nil, then puts every
// file in place (only once all of them are complete). It returns the paths
// written, in paybatch.Categories order, then rejected.csv. After an error
// nothing of the export is left but the files already placed.
func (e *CSVExport) Commit(rejected iter.Seq2[paybatch.RowError, error]) (paths []string, err error) {
	defer func() {
		if err != nil {
			e.Abort()
		}
	}()
	if rejected != nil {
		o, err := e.open(RejectedCSV, RejectedColumns)
		if err != nil {
			return nil, err
		}
		if err := writeRejected(o.cw, rejected); err != nil {
			return nil, fmt.Errorf("csv export: %w", err)
		}
	}
	for _, o := range e.order {
		o.cw.Flush()
		if err := o.cw.Error(); err != nil {
			return nil, fmt.Errorf("write %s: %w", o.af.path, err)
		}
	}
	// Every file is complete: move them all into place.
	for i, o := range e.order {
		if err := o.af.commit(); err != nil {
			e.order = e.order[i+1:]
			return paths, err
		}
		paths = append(paths, o.af.path)
	}
	e.order = nil
	return paths, nil
}

// Abort removes the files not yet in place.
func (e *CSVExport) Abort() {
	for _, o := range e.order {
		o.af.abort()
	}
	e.order = nil
}

// WriteRejectedCSV writes the reader rejects as rejected.csv holds them
// (header, then one record per reject; the same neutralising and masking)
// to w. (reconcile.ExportCSV writes the category files with DuckDB and this
// one with Go.)
func WriteRejectedCSV(w io.Writer, rows iter.Seq2[paybatch.RowError, error]) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(RejectedColumns); err != nil {
		return err
	}
	if err := writeRejected(cw, rows); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

func writeRejected(cw *csv.Writer, rows iter.Seq2[paybatch.RowError, error]) error {
	rr := make([]string, len(RejectedColumns))
	n := 0
	for re, err := range rows {
		n++
		if err != nil {
			return fmt.Errorf("rejected row %d: %w", n, err)
		}
		rejectedRecord(rr, re)
		if err := cw.Write(rr); err != nil {
			return err
		}
	}
	return nil
}

func csvText(s string) string {
	if NeedsNeutralising(s) {
		return "'" + s
	}
	return s
}

func csvAmount(m *paybatch.Money) (string, string) {
	if m == nil {
		return "", ""
	}
	return m.String(), m.Currency.Code()
}

func reconRecord(rec []string, r paybatch.ReconRow) {
	rec[0] = string(r.Category)
	rec[1] = csvText(r.MerchantTxID)
	rec[2], rec[3] = csvAmount(r.LedgerAmount)
	rec[4] = NeutraliseCSV(r.LedgerStatus)
	rec[5], rec[6] = csvAmount(r.ProviderAmount)
	rec[7] = NeutraliseCSV(r.ProviderStatus)
	rec[8] = csvText(r.ProviderID)
	rec[9] = NeutraliseCSV(r.Reason)
	rec[10] = csvText(r.Source.File)
	rec[11] = csvText(r.Source.Sheet)
	rec[12] = ""
	if r.Source.Row > 0 {
		rec[12] = strconv.Itoa(r.Source.Row)
	}
	rec[13], rec[14], rec[15] = "", "", ""
	if !r.RequestedDate.IsZero() {
		rec[13] = r.RequestedDate.Format("2006-01-02")
	}
	if !r.ProviderDate.IsZero() {
		rec[14] = r.ProviderDate.Format("2006-01-02")
	}
	if r.DateMoved() {
		rec[15] = "moved"
	}
}

func rejectedRecord(rec []string, re paybatch.RowError) {
	rec[0] = csvText(re.Source.File)
	rec[1] = csvText(re.Source.Sheet)
	rec[2] = ""
	if re.Source.Row > 0 {
		rec[2] = strconv.Itoa(re.Source.Row)
	}
	rec[3] = csvText(re.Column)
	rec[4] = NeutraliseCSV(re.Value)
	rec[5] = ""
	if re.Err != nil {
		rec[5] = NeutraliseCSV(re.Err.Error())
	}
}
