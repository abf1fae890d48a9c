package writers

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// sheetXML builds the XML of one worksheet, row by row, into a byte
// buffer: the lean writer behind WriteXLSX. It writes the least XML a
// spreadsheet needs, because the size of the sheet XML is what the deflate
// of the workbook costs:
//
//   - rows and cells carry no r="A1" reference (it is optional in
//     SpreadsheetML: a row follows the previous one, a cell the previous
//     cell); a gap inside a row is an empty <c/>, trailing blanks are left
//     out;
//   - repeated text (categories, currencies, statuses, file and sheet
//     names, dates) goes to the shared string table (sst) and is written
//     as its index; other text is an inline string;
//   - numbers are their exact decimal text.
//
// Text is written as excelize writes it, so that both read back the same:
// at most 32,767 UTF-16 units (Excel's cell limit), XML-escaped with
// characters XML cannot hold replaced by U+FFFD, a literal _xHHHH_ escaped
// as _x005F_xHHHH_, and xml:space="preserve" when it starts or ends with
// white space.
type sheetXML struct {
	b       []byte
	pending int // empty cells not yet written (written only before a value)
}

const (
	sheetXMLHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" +
		`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`
	// frozenHeader freezes the first row (the header) and puts the cursor
	// under it.
	frozenHeader = `<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>`
)

// begin writes the worksheet's start: frozen header pane, column widths,
// and opens sheetData.
func (x *sheetXML) begin(widths []float64) {
	x.b = append(x.b, sheetXMLHead...)
	x.b = append(x.b, frozenHeader...)
	if len(widths) > 0 {
		x.b = append(x.b, "<cols>"...)
		for i, w := range widths {
			x.b = append(x.b, `<col min="`...)
			x.b = strconv.AppendInt(x.b, int64(i+1), 10)
			x.b = append(x.b, `" max="`...)
			x.b = strconv.AppendInt(x.b, int64(i+1), 10)
			x.b = append(x.b, `" width="`...)
			x.b = strconv.AppendFloat(x.b, w, 'f', -1, 64)
			x.b = append(x.b, `" customWidth="1"/>`...)
		}
		x.b = append(x.b, "</cols>"...)
	}
	x.b = append(x.b, "<sheetData>"...)
}

// end closes sheetData and adds the autofilter over the header and rows
// (ncols columns, nrows rows with the header).
func (x *sheetXML) end(ncols, nrows int) {
	x.b = append(x.b, "</sheetData><autoFilter ref=\"A1:"...)
	x.b = appendColName(x.b, ncols)
	x.b = strconv.AppendInt(x.b, int64(max(nrows, 1)), 10)
	x.b = append(x.b, "\"/></worksheet>"...)
}

func (x *sheetXML) startRow() { x.b = append(x.b, "<row>"...); x.pending = 0 }
func (x *sheetXML) endRow()   { x.b = append(x.b, "</row>"...) }

// blank leaves the next cell empty.
func (x *sheetXML) blank() { x.pending++ }

// The cell writers below build on a local slice and store x.b once: while
// the GC marks (much of a drain's time: the rows allocate), every store of
// the slice into x costs a write barrier, and a cell made five of them.

// openCell appends the empty cells still pending and the start tag of a
// cell to b.
func (x *sheetXML) openCell(b []byte, style int, typ string) []byte {
	for ; x.pending > 0; x.pending-- {
		b = append(b, "<c/>"...)
	}
	b = append(b, "<c"...)
	if style != 0 {
		b = append(b, ` s="`...)
		b = strconv.AppendInt(b, int64(style), 10)
		b = append(b, '"')
	}
	b = append(b, typ...)
	return append(b, '>')
}

// number writes a numeric cell whose value is the decimal text v (already
// valid: digits, an optional '-' and '.').
func (x *sheetXML) number(style int, v []byte) {
	b := x.openCell(x.b, style, "")
	b = append(b, "<v>"...)
	b = append(b, v...)
	x.b = append(b, "</v></c>"...)
}

func (x *sheetXML) integer(style int, n int64) {
	b := x.openCell(x.b, style, "")
	b = append(b, "<v>"...)
	b = appendInt(b, n)
	x.b = append(b, "</v></c>"...)
}

// shared writes a cell holding shared string number i.
func (x *sheetXML) shared(style, i int) {
	x.cell(appendShared(nil, style, i))
}

// appendShared appends the cell holding shared string number i to b.
func appendShared(b []byte, style, i int) []byte {
	b = append(b, "<c"...)
	if style != 0 {
		b = append(b, ` s="`...)
		b = strconv.AppendInt(b, int64(style), 10)
		b = append(b, '"')
	}
	b = append(b, ` t="s"><v>`...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, "</v></c>"...)
}

// cell writes the cell whose XML is c.
func (x *sheetXML) cell(c []byte) {
	b := x.b
	for ; x.pending > 0; x.pending-- {
		b = append(b, "<c/>"...)
	}
	x.b = append(b, c...)
}

// inline writes an inline string cell.
func (x *sheetXML) inline(style int, s string) {
	b := x.openCell(x.b, style, ` t="inlineStr"`)
	b = append(b, "<is>"...)
	b = appendT(b, s)
	x.b = append(b, "</is></c>"...)
}

// appendT appends <t>s</t> as excelize writes it (see sheetXML).
func appendT(b []byte, s string) []byte {
	s = truncateCell(s)
	if s != "" && (isXMLSpace(s[0]) || isXMLSpace(s[len(s)-1])) {
		b = append(b, `<t xml:space="preserve">`...)
	} else {
		b = append(b, "<t>"...)
	}
	b = appendEscaped(b, s)
	return append(b, "</t>"...)
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// maxCellUnits is Excel's limit on the text of a cell, in UTF-16 units.
const maxCellUnits = 32767

// truncateCell cuts s to maxCellUnits UTF-16 units, as excelize does.
func truncateCell(s string) string {
	if len(s) <= maxCellUnits {
		return s // each UTF-16 unit takes at least one byte
	}
	units := 0
	for i, r := range s {
		n := utf16.RuneLen(r)
		if n < 0 {
			n = 1
		}
		if units+n > maxCellUnits {
			return s[:i]
		}
		units += n
	}
	return s
}

// appendEscaped appends s escaped for XML character data: & < > escaped
// (quotes need no escape outside attributes),
// CR and TAB as character references (a parser would turn a raw CR into
// LF), bytes that are not valid UTF-8 and characters XML 1.0 cannot hold
// as U+FFFD, and a literal _xHHHH_ as _x005F_xHHHH_ (so a spreadsheet does
// not decode it).
func appendEscaped(b []byte, s string) []byte {
	// most text has nothing to escape: appended as it is
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '&' || c == '<' || c == '>' || c == '_' {
			plain = false
			break
		}
	}
	if plain {
		return append(b, s...)
	}
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch {
			case c == '&':
				esc = "&amp;"
			case c == '<':
				esc = "&lt;"
			case c == '>':
				esc = "&gt;"
			case c == '\t':
				esc = "&#x9;"
			case c == '\r':
				esc = "&#xD;"
			case c == '\n':
				i++
				continue
			case c < 0x20:
				esc = "\uFFFD"
			case c == '_' && isBstr(s[i:]):
				esc = "_x005F_"
			default:
				i++
				continue
			}
			b = append(b, s[last:i]...)
			b = append(b, esc...)
			i++
			last = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !xmlChar(r) {
			b = append(b, s[last:i]...)
			b = append(b, "\uFFFD"...)
			i += n
			last = i
			continue
		}
		i += n
	}
	return append(b, s[last:]...)
}

// xmlChar reports whether XML 1.0 can hold r (above ASCII).
func xmlChar(r rune) bool {
	return r >= 0x80 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// isBstr reports whether s starts with an _xHHHH_ escape.
func isBstr(s string) bool {
	if len(s) < 7 || s[1] != 'x' || s[6] != '_' {
		return false
	}
	for _, c := range []byte(s[2:6]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// appendColName appends the column letters of col (1 → A, 27 → AA).
func appendColName(b []byte, col int) []byte {
	var tmp [8]byte
	i := len(tmp)
	for col > 0 {
		col--
		i--
		tmp[i] = byte('A' + col%26)
		col /= 26
	}
	return append(b, tmp[i:]...)
}

// sst is the workbook's shared string table for the data sheets: each
// distinct string once, numbered after the base strings the Summary sheet
// already uses. It holds at most sstMaxStrings strings of sstMaxBytes
// bytes in all (memory stays bounded); text past that is written inline.
type sst struct {
	base  int
	index map[string]int
	order []string
	bytes int
}

const (
	sstMaxStrings = 1 << 16
	sstMaxBytes   = 8 << 20
	sstMaxLen     = 256 // longer text is rarely repeated: inline
)

func newSST(base int) *sst { return &sst{base: base, index: map[string]int{}} }

// lookup returns s's number, adding it when there is room.
func (t *sst) lookup(s string) (int, bool) {
	if i, ok := t.index[s]; ok {
		return i, true
	}
	if len(s) > sstMaxLen || len(t.order) >= sstMaxStrings || t.bytes+len(s) > sstMaxBytes {
		return 0, false
	}
	// a copy: s may be a piece of a larger string (reconcile's Rows cut a
	// row's text fields out of one), which the table must not keep alive
	s = strings.Clone(s)
	i := t.base + len(t.order)
	t.index[s] = i
	t.order = append(t.order, s)
	t.bytes += len(s)
	return i, true
}

// appendItems appends the <si> items of the table.
func (t *sst) appendItems(b []byte) []byte {
	for _, s := range t.order {
		b = append(b, "<si>"...)
		b = appendT(b, s)
		b = append(b, "</si>"...)
	}
	return b
}
