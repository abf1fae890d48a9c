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
	type out struct {
		af *atomicFile
		cw *csv.Writer
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("csv export: %w", err)
	}
	files := map[paybatch.Category]*out{}
	var order []*out
	defer func() {
		if err != nil {
			for _, o := range order {
				o.af.abort()
			}
		}
	}()
	open := func(name string, header []string) (*out, error) {
		af, err := createAtomic(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		o := &out{af: af, cw: csv.NewWriter(af.w)}
		order = append(order, o)
		return o, o.cw.Write(header)
	}
	for _, c := range paybatch.Categories {
		o, err := open(string(c)+".csv", ReconColumns)
		if err != nil {
			return nil, err
		}
		files[c] = o
	}
	rec := make([]string, len(ReconColumns))
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
			o, ok := files[r.Category]
			if !ok {
				return nil, fmt.Errorf("csv export: %s row %d (%s): unknown category %q", part.name, n, r.MerchantTxID, r.Category)
			}
			reconRecord(rec, r)
			if err := o.cw.Write(rec); err != nil {
				return nil, err
			}
		}
	}
	if rep.Rejected != nil {
		o, err := open(RejectedCSV, RejectedColumns)
		if err != nil {
			return nil, err
		}
		if err := writeRejected(o.cw, rep.Rejected); err != nil {
			return nil, fmt.Errorf("csv export: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, o := range order {
		o.cw.Flush()
		if err := o.cw.Error(); err != nil {
			return nil, fmt.Errorf("write %s: %w", o.af.path, err)
		}
	}
	// Every file is complete: move them all into place.
	for i, o := range order {
		if err := o.af.commit(); err != nil {
			for _, rest := range order[i+1:] {
				rest.af.abort()
			}
			order = nil
			return paths, err
		}
		paths = append(paths, o.af.path)
	}
	return paths, nil
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
