package writers

import (
	"context"
	"encoding/csv"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

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
	line  []byte
	last  lineCache
	// the category of the last row written and its file: rows come
	// category by category
	lastCat paybatch.Category
	lastOut *csvOut
}

// csvOut is one file of the export: a category's, whose lines are built by
// appendReconLine and written to af as they are, or rejected.csv, written
// through cw.
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
	e := &CSVExport{dir: dir, files: map[paybatch.Category]*csvOut{}}
	for _, c := range paybatch.Categories {
		af, err := createAtomic(filepath.Join(e.dir, string(c)+".csv"))
		if err != nil {
			e.Abort()
			return nil, err
		}
		o := &csvOut{af: af}
		e.order = append(e.order, o)
		e.files[c] = o
		e.line = e.line[:0]
		for i, h := range ReconColumns {
			if i > 0 {
				e.line = append(e.line, ',')
			}
			e.line = appendCSVField(e.line, h)
		}
		if _, err := af.w.Write(append(e.line, '\n')); err != nil {
			e.Abort()
			return nil, err
		}
	}
	return e, nil
}

// Write adds r to its category's file.
func (e *CSVExport) Write(r paybatch.ReconRow) error {
	o := e.lastOut
	if o == nil || r.Category != e.lastCat {
		var ok bool
		if o, ok = e.files[r.Category]; !ok {
			return fmt.Errorf("%s: unknown category %q", r.MerchantTxID, r.Category)
		}
		e.lastCat, e.lastOut = r.Category, o
	}
	e.line = appendReconLine(e.line[:0], r, &e.last)
	_, err := o.af.w.Write(e.line)
	return err
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
		af, err := createAtomic(filepath.Join(e.dir, RejectedCSV))
		if err != nil {
			return nil, err
		}
		o := &csvOut{af: af, cw: csv.NewWriter(af.w)}
		e.order = append(e.order, o)
		if err := o.cw.Write(RejectedColumns); err != nil {
			return nil, fmt.Errorf("write %s: %w", o.af.path, err)
		}
		if err := writeRejected(o.cw, rejected); err != nil {
			return nil, fmt.Errorf("csv export: %w", err)
		}
	}
	for _, o := range e.order {
		if o.cw == nil {
			continue
		}
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

// appendReconLine appends r as one line of its category's CSV file: the
// bytes encoding/csv writes for its fields (reconRecord in the tests) (comma-separated, "\n"
// at the end, quoted as csv.Writer quotes), without building the record:
// the amounts, the row and the dates are appended as they are formatted
// (TestReconLineEqualsEncodingCSV). With c, a field that repeats the one
// of the line before (category, currencies, statuses, reason, file,
// sheet) is copied from c instead of being masked, neutralised and quoted
// again.
func appendReconLine(b []byte, r paybatch.ReconRow, c *lineCache) []byte {
	b = c.field(b, 0, string(r.Category), fieldPlain)
	b = append(b, ',')
	b = appendCSVField(b, csvText(r.MerchantTxID))
	b = appendCSVAmount(append(b, ','), r.LedgerAmount, c, 1)
	b = append(b, ',')
	b = c.field(b, 2, r.LedgerStatus, fieldFree)
	b = appendCSVAmount(append(b, ','), r.ProviderAmount, c, 3)
	b = append(b, ',')
	b = c.field(b, 4, r.ProviderStatus, fieldFree)
	b = append(b, ',')
	b = appendCSVField(b, csvText(r.ProviderID))
	b = append(b, ',')
	b = c.field(b, 5, r.Reason, fieldFree)
	b = append(b, ',')
	b = c.field(b, 6, r.Source.File, fieldText)
	b = append(b, ',')
	b = c.field(b, 7, r.Source.Sheet, fieldText)
	b = append(b, ',')
	if r.Source.Row > 0 {
		b = appendInt(b, int64(r.Source.Row))
	}
	b = append(b, ',')
	if !r.RequestedDate.IsZero() {
		b = r.RequestedDate.AppendFormat(b, "2006-01-02")
	}
	b = append(b, ',')
	if !r.ProviderDate.IsZero() {
		b = r.ProviderDate.AppendFormat(b, "2006-01-02")
	}
	b = append(b, ',')
	if r.DateMoved() {
		b = append(b, "moved"...)
	}
	return append(b, '\n')
}

// lineCache holds, for each field of a CSV line that mostly repeats from
// one line to the next, the last text appendReconLine was given and the
// bytes it wrote for it; and the last amount's.
type lineCache struct {
	f [8]struct {
		raw string
		out []byte
		ok  bool
	}
	// the last amount: its minor units, exponent and text
	amount struct {
		minor int64
		exp   int
		out   []byte
		ok    bool
	}
}

// How a field's text becomes its bytes: as it is (the category), by
// csvText (text from the data), by NeutraliseCSV (free text: card numbers
// masked too); then quoted as appendCSVField quotes.
const (
	fieldPlain = iota
	fieldText
	fieldFree
)

// field appends the field s of slot i as kind says; from the cache when s
// is the slot's last text. c may be nil (no cache).
func (c *lineCache) field(b []byte, i int, s string, kind int) []byte {
	if s == "" {
		return b
	}
	if c == nil {
		return appendFieldAs(b, s, kind)
	}
	f := &c.f[i]
	if f.ok && f.raw == s {
		return append(b, f.out...)
	}
	n := len(b)
	b = appendFieldAs(b, s, kind)
	f.raw, f.ok = s, true
	f.out = append(f.out[:0], b[n:]...)
	return b
}

func appendFieldAs(b []byte, s string, kind int) []byte {
	switch kind {
	case fieldText:
		s = csvText(s)
	case fieldFree:
		s = NeutraliseCSV(s)
	}
	return appendCSVField(b, s)
}

// appendCSVAmount appends the amount and currency fields of m (two empty
// fields when nil): paybatch.Money.String and the code (slot cur of c); an
// amount never needs quoting.
func appendCSVAmount(b []byte, m *paybatch.Money, c *lineCache, cur int) []byte {
	if m == nil {
		return append(b, ',')
	}
	if c == nil {
		b = appendFixed(b, m.Minor, m.Currency.Exponent())
	} else {
		// a row's provider amount is mostly its ledger amount
		a, exp := &c.amount, m.Currency.Exponent()
		if !a.ok || a.minor != m.Minor || a.exp != exp {
			a.minor, a.exp, a.ok = m.Minor, exp, true
			a.out = appendFixed(a.out[:0], m.Minor, exp)
		}
		b = append(b, a.out...)
	}
	b = append(b, ',')
	return c.field(b, cur, m.Currency.Code(), fieldPlain)
}

// appendFixed appends minor/10^exp with exactly exp decimals, as
// paybatch.Money.String writes it: 123450, 2 → "1234.50"; 1500, 0 → "1500";
// -5, 2 → "-0.05".
func appendFixed(b []byte, minor int64, exp int) []byte {
	u := uint64(minor)
	if minor < 0 {
		b = append(b, '-')
		u = -u
	}
	if exp <= 0 {
		return appendUint(b, u)
	}
	pow := pow10[exp]
	b = appendUint(b, u/pow)
	return appendDigits(append(b, '.'), u%pow, exp)
}

// appendCSVField appends one field as encoding/csv's Writer writes it
// (Comma ',', UseCRLF false): quoted, with its quotes doubled, when
// csvNeedsQuotes; as it is otherwise.
func appendCSVField(b []byte, f string) []byte {
	if !csvNeedsQuotes(f) {
		return append(b, f...)
	}
	b = append(b, '"')
	for {
		i := strings.IndexByte(f, '"')
		if i < 0 {
			break
		}
		b = append(b, f[:i+1]...)
		b = append(b, '"')
		f = f[i+1:]
	}
	b = append(b, f...)
	return append(b, '"')
}

// csvNeedsQuotes is encoding/csv's rule (Writer.fieldNeedsQuotes, Comma
// ','): a field holding a comma, a quote, CR or LF, the field `\.`, or
// one starting with a Unicode space.
func csvNeedsQuotes(f string) bool {
	if f == "" {
		return false
	}
	if f == `\.` {
		return true
	}
	const special = 1<<'\n' | 1<<'\r' | 1<<'"' | 1<<','
	for i := 0; i < len(f); i++ {
		if c := f[i]; c < 64 && special>>c&1 != 0 {
			return true
		}
	}
	if c := f[0]; c < utf8.RuneSelf {
		return c == ' ' || '\t' <= c && c <= '\r' // unicode.IsSpace below U+0080
	}
	r, _ := utf8.DecodeRuneInString(f)
	return unicode.IsSpace(r)
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
