package readers

import (
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/paybatch/paybatch"
)

// Table is any tabular file paybatch reads other than a batch — a merchant
// ledger, a provider's results — read by the same code as a batch: the
// same encodings, delimiter sniffing, line endings, streaming XLSX reader
// and field-count rule, so a file means one thing to every command.
type Table struct {
	name, sheet string
	src         source
	o           opened
	header      []string
	headerRow   int
	cells       []Cell
}

// TableOptions say how to read a Table. Set them before OpenTable.
type TableOptions struct {
	Sheet string // XLSX sheet name; "" = the first visible sheet
	// AcceptFormulaValues reads an XLSX formula cell at the value the
	// spreadsheet last computed; without it the cell is marked Formula.
	AcceptFormulaValues bool
}

// Cell is one value as read: text, or for a numeric XLSX cell the number
// exactly as the sheet stores it (Number; never through a float).
type Cell struct {
	Text    string
	Number  bool
	Formula bool // an XLSX formula cell (unless accepted); Text is its last computed value
}

// OpenTable reads the header (the first non-blank row) of the CSV or XLSX
// of size bytes in r, named name in messages. r is read, never closed.
func OpenTable(r io.ReaderAt, size int64, name string, o TableOptions) (*Table, error) {
	op, err := openSource(r, size, name, o.Sheet, o.AcceptFormulaValues, nil)
	if err != nil {
		return nil, err
	}
	t := &Table{name: name, sheet: op.sheet, src: op.src, o: op}
	row, cells, err := op.src.next()
	if err == io.EOF {
		op.src.close()
		return nil, fmt.Errorf("%s: %w: no header row (the file or sheet has no data)", t.where(), paybatch.ErrUnusableFile)
	}
	if err != nil {
		op.src.close()
		return nil, err
	}
	t.headerRow = row
	t.header = make([]string, len(cells))
	for i, c := range cells {
		t.header[i] = c.s
	}
	return t, nil
}

func (t *Table) where() string {
	if t.sheet != "" {
		return fmt.Sprintf("%s sheet %q", t.name, t.sheet)
	}
	return t.name
}

// Header is the header row as written.
func (t *Table) Header() []string { return t.header }

// Sheet is the sheet read ("" for a CSV).
func (t *Table) Sheet() string { return t.sheet }

// Sheets lists every sheet of a workbook (nil for a CSV).
func (t *Table) Sheets() []string { return t.o.sheets }

// Delimiter is a CSV's delimiter (0 for XLSX).
func (t *Table) Delimiter() rune { return t.o.delim }

// PlainCSV reports whether the file is a CSV another reader can take as it
// is: UTF-8 (a byte order mark allowed), LF or CRLF line ends, no "sep="
// line, the header on line 1.
func (t *Table) PlainCSV() bool { return t.o.delim != 0 && t.o.plain && t.headerRow == 1 }

// Next returns the next non-blank row and its row number (a CSV record's
// first line). It returns io.EOF after the last row. A CSV record with more
// or fewer fields than the header is returned with a *FieldCountError; the
// table can be read on. Cells are valid until the next call.
func (t *Table) Next() (int, []Cell, error) {
	row, cells, err := t.src.next()
	if err != nil {
		return 0, nil, err
	}
	t.cells = t.cells[:0]
	for _, c := range cells {
		t.cells = append(t.cells, Cell{Text: c.s, Number: c.num, Formula: c.formula})
	}
	if t.o.delim != 0 && len(cells) != len(t.header) {
		return row, t.cells, &FieldCountError{File: t.name, Line: row, Found: len(cells), Want: len(t.header), Delim: t.o.delim}
	}
	return row, t.cells, nil
}

// Close releases what the table holds (not r).
func (t *Table) Close() error { return t.src.close() }

// FieldCountError is a CSV record with more or fewer fields than its
// header. It wraps paybatch.ErrUnusableFile: a ledger or results file with
// one is refused whole.
type FieldCountError struct {
	File         string
	Line         int
	Found, Want  int
	Delim        rune
	DecimalComma bool // the reader has --decimal-comma (batches do; ledgers do not)
}

func (e *FieldCountError) Error() string {
	return fmt.Sprintf("%s row %d: %v: %s", e.File, e.Line, paybatch.ErrUnusableFile, FieldCountReason(e.Found, e.Want, e.Delim, e.DecimalComma))
}

func (e *FieldCountError) Unwrap() error { return paybatch.ErrUnusableFile }

// FieldCountReason says what is wrong with a record of found fields under
// a header of want, and how to fix it.
func FieldCountReason(found, want int, delim rune, decimalComma bool) string {
	if found < want {
		return fmt.Sprintf("%d fields where the header has %d; every record needs all the header's fields (an empty value still needs its delimiter %s)", found, want, delimName(delim))
	}
	fix := fmt.Sprintf("a value that contains the delimiter %s must be in double quotes (e.g. \"1,234.56\"), or the extra field removed", delimName(delim))
	if delim == ',' {
		if decimalComma {
			fix += "; if ',' is the decimal mark, save the file with ';' as the delimiter and pass --decimal-comma"
		} else {
			fix += "; or write amounts without thousands separators (1234.56)"
		}
	}
	return fmt.Sprintf("%d fields where the header has %d; %s", found, want, fix)
}

func delimName(d rune) string {
	switch d {
	case '\t':
		return "TAB"
	}
	return fmt.Sprintf("'%c'", d)
}

// TrimID is the one trimming rule for ids (merchant_transaction_id in
// batches, ledgers and results): every Unicode space (unicode.IsSpace: the
// no-break space, the narrow no-break space, ideographic space...) is
// removed from both ends.
func TrimID(s string) string { return strings.TrimFunc(s, unicode.IsSpace) }

// Spaces is every character TrimID removes, for readers that trim in SQL.
func Spaces() string {
	var b strings.Builder
	for _, rg := range unicode.White_Space.R16 {
		for r := rune(rg.Lo); r <= rune(rg.Hi); r += rune(rg.Stride) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
