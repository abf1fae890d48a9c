package writers

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

// The lean path of WriteXLSX. excelize still builds what is small and
// rich — the Summary sheet with its chart, the styles, the workbook and its
// relationships, the autofilters' defined names — while the data sheets,
// which are nearly all of the bytes, are streamed by sheetXML straight into
// the zip, each compressed by a goroutine of its own while the next rows
// are turned into XML. The small workbook excelize writes is then copied
// into the same zip entry by entry (already compressed, so never
// compressed twice), less the empty placeholders of the data sheets, and
// with the data sheets' shared strings appended to its string table.

// xlsxDeflateLevel is the deflate level of the data sheets. Level 1 of
// klauspost/compress: measured on the 1M-row report (BENCHMARKS.md) it is
// the fastest level whose file stays within a few per cent of level 6.
const xlsxDeflateLevel = flate.BestSpeed

// chunkSize is how much sheet XML is handed to the compressing goroutine
// at a time.
const chunkSize = 1 << 20

// leanSheet is one data sheet being streamed: its XML and where it goes.
type leanSheet struct {
	name, path string
	rows       int // written so far, header included
	cols       int
}

type leanWorkbook struct {
	ctx    context.Context
	f      *excelize.File
	st     *styles
	sst    *sst
	pipe   *zipPipe
	x      sheetXML
	max    int
	sheets []leanSheet
	cur    *leanSheet
	// the last shared-string cells of each column: rows mostly repeat one
	// of them (a category, a currency, a status), and then its bytes are
	// written again as they are
	recent []recentCells
	// the last amount cell written (the cell of an exact amount depends
	// on its minor units and exponent only)
	lastAmount struct {
		minor int64
		exp   int
		cell  []byte
		ok    bool
		// the style of exponent styleExp (styles.amountStyle's, looked
		// up again only when the exponent changes)
		style, styleExp int
		styleOK         bool
	}
}

// recentCells are the last few shared-string cells written in a column:
// the text as the row gave it (before masking) and the cell's XML; next
// is the one to replace.
type recentCells struct {
	c [4]struct {
		raw  string
		cell []byte
		ok   bool
	}
	next int
}

func writeLeanXLSX(ctx context.Context, w io.Writer, rep Report, maxRows int, matchedCap int64) error {
	f := excelize.NewFile()
	defer f.Close()
	st, err := startWorkbook(f, rep, matchedCap)
	if err != nil {
		return err
	}
	if f.SharedStrings == nil {
		return errors.New("excelize shared string table not available")
	}
	base := len(f.SharedStrings.SI)

	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, xlsxDeflateLevel)
	})
	lw := &leanWorkbook{ctx: ctx, f: f, st: st, sst: newSST(base), max: maxRows,
		recent: make([]recentCells, len(ReconColumns))}
	lw.pipe = newZipPipe(zw)
	err = lw.dataSheets(rep, matchedCap)
	if perr := lw.pipe.close(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return lw.finish(zw, base)
}

func (lw *leanWorkbook) dataSheets(rep Report, matchedCap int64) error {
	for _, part := range []struct {
		name string
		rows iter.Seq2[paybatch.ReconRow, error]
		cap  int64
	}{{SheetExceptions, rep.Exceptions, -1}, {SheetMatched, rep.Matched, matchedCap}} {
		if err := lw.open(part.name, ReconColumns, reconWidths); err != nil {
			return err
		}
		if part.rows != nil {
			n := int64(0)
			for r, err := range part.rows {
				if err != nil {
					return fmt.Errorf("%s row %d: %w", part.name, n+1, err)
				}
				if part.cap >= 0 && n >= part.cap {
					break // the rest only in the CSV and Parquet exports
				}
				if n++; n&4095 == 0 {
					if err := lw.ctx.Err(); err != nil {
						return err
					}
				}
				if err := lw.next(part.name, ReconColumns, reconWidths); err != nil {
					return err
				}
				lw.reconRow(r)
			}
		}
		if err := lw.close(); err != nil {
			return err
		}
	}
	if err := lw.open(SheetRejected, RejectedColumns, rejectedWidths); err != nil {
		return err
	}
	if rep.Rejected != nil {
		n := 0
		for re, err := range rep.Rejected {
			if err != nil {
				return fmt.Errorf("%s row %d: %w", SheetRejected, n+1, err)
			}
			if n++; n&4095 == 0 {
				if err := lw.ctx.Err(); err != nil {
					return err
				}
			}
			if err := lw.next(SheetRejected, RejectedColumns, rejectedWidths); err != nil {
				return err
			}
			lw.rejectedRow(re)
		}
	}
	if err := lw.close(); err != nil {
		return err
	}
	return lw.ctx.Err()
}

// open starts the sheet base (or its next continuation "base (2)", …):
// the sheet is created in the excelize workbook (so the workbook lists
// it) and its XML entry in the zip.
func (lw *leanWorkbook) open(base string, header []string, widths []float64) error {
	part := 1
	for _, s := range lw.sheets {
		if s.name == base || strings.HasPrefix(s.name, base+" (") {
			part++
		}
	}
	name := base
	if part > 1 {
		name = fmt.Sprintf("%s (%d)", base, part)
	}
	if _, err := lw.f.NewSheet(name); err != nil {
		return fmt.Errorf("sheet %s: %w", name, err)
	}
	id := 0
	for sid, n := range lw.f.GetSheetMap() {
		if n == name {
			id = sid
		}
	}
	if id == 0 {
		return fmt.Errorf("sheet %s: excelize did not list it", name)
	}
	lw.sheets = append(lw.sheets, leanSheet{name: name, path: "xl/worksheets/sheet" + strconv.Itoa(id) + ".xml", cols: len(header)})
	lw.cur = &lw.sheets[len(lw.sheets)-1]
	if err := lw.pipe.create(lw.cur.path); err != nil {
		return err
	}
	if lw.x.b == nil {
		lw.x.b = lw.pipe.buffer()
	}
	lw.x.begin(widths)
	lw.x.startRow()
	for _, h := range header {
		if i, ok := lw.sst.lookup(h); ok {
			lw.x.shared(lw.st.header, i)
		} else {
			lw.x.inline(lw.st.header, h)
		}
	}
	lw.x.endRow()
	lw.cur.rows = 1
	clear(lw.recent)
	return nil
}

// next makes room for one more row: a new continuation sheet when this one
// is full; and hands full chunks of XML to the compressor.
func (lw *leanWorkbook) next(base string, header []string, widths []float64) error {
	if lw.cur.rows >= lw.max {
		if err := lw.close(); err != nil {
			return err
		}
		if err := lw.open(base, header, widths); err != nil {
			return err
		}
	}
	lw.cur.rows++
	if len(lw.x.b) >= chunkSize {
		b, err := lw.pipe.write(lw.x.b)
		if err != nil {
			return err
		}
		lw.x.b = b
	}
	return nil
}

func (lw *leanWorkbook) close() error {
	lw.x.end(lw.cur.cols, lw.cur.rows)
	b, err := lw.pipe.write(lw.x.b)
	lw.x.b = b
	return err
}

// text writes text from the data in column col: empty is a blank cell;
// free text has card numbers masked; text a spreadsheet would evaluate is
// quote-prefixed (the same rules as styles.text). shared says whether the
// column's values repeat enough to go to the shared string table.
func (lw *leanWorkbook) text(col int, s string, free, shared bool) {
	if s == "" {
		lw.x.blank()
		return
	}
	if shared {
		// the text of one of the column's last shared cells: that cell
		r := &lw.recent[col]
		for i := range r.c {
			if c := &r.c[i]; c.ok && c.raw == s {
				lw.x.cell(c.cell)
				return
			}
		}
	}
	raw := s
	if free {
		s = paybatch.MaskCardNumbers(s)
	}
	style := 0
	if NeedsNeutralising(s) {
		style = lw.st.quoted
	}
	if shared {
		if i, ok := lw.sst.lookup(s); ok {
			r := &lw.recent[col]
			c := &r.c[r.next]
			r.next = (r.next + 1) % len(r.c)
			c.raw, c.ok = raw, true
			c.cell = appendShared(c.cell[:0], style, i)
			lw.x.cell(c.cell)
			return
		}
	}
	lw.x.inline(style, s)
}

// amount writes the amount and currency cells of m (two blanks when nil):
// a numeric cell holding the exact decimal, formatted with the currency's
// decimals, or exact text beyond maxExactMinor (as amountValue decides).
func (lw *leanWorkbook) amount(col int, m *paybatch.Money) {
	if m == nil {
		lw.x.blank()
		lw.x.blank()
		return
	}
	if m.Minor >= maxExactMinor || m.Minor <= -maxExactMinor {
		lw.x.inline(0, m.String())
	} else {
		// a row's provider amount is mostly its ledger amount: the same cell
		a, exp := &lw.lastAmount, m.Currency.Exponent()
		if !a.ok || a.minor != m.Minor || a.exp != exp {
			a.minor, a.exp, a.ok = m.Minor, exp, true
			if !a.styleOK || a.styleExp != exp {
				a.style, a.styleExp, a.styleOK = lw.st.amountStyle(exp), exp, true
			}
			a.cell = appendNumber(a.cell[:0], a.style, m.Minor, exp)
		}
		lw.x.cell(a.cell)
	}
	lw.text(col+1, m.Currency.Code(), false, true)
}

// appendNumber appends the numeric cell of minor/10^exp (appendDecimal)
// with the style to b.
func appendNumber(b []byte, style int, minor int64, exp int) []byte {
	b = append(b, "<c"...)
	if style != 0 {
		b = append(b, ` s="`...)
		b = strconv.AppendInt(b, int64(style), 10)
		b = append(b, '"')
	}
	b = append(b, "><v>"...)
	b = appendDecimal(b, minor, exp)
	return append(b, "</v></c>"...)
}

// appendDecimal appends minor/10^exp as the shortest exact decimal:
// 12050, 2 → "120.5"; 1500, 0 → "1500"; -110, 2 → "-1.1"; 0, 2 → "0".
func appendDecimal(b []byte, minor int64, exp int) []byte {
	u := uint64(minor)
	if minor < 0 {
		b = append(b, '-')
		u = uint64(-minor)
	}
	if exp <= 0 {
		return appendUint(b, u)
	}
	pow := pow10[exp] // exp ≤ 4 (ISO 4217)
	b = appendUint(b, u/pow)
	frac := u % pow
	if frac == 0 {
		return b
	}
	for frac%10 == 0 {
		frac /= 10
		exp--
	}
	return appendDigits(append(b, '.'), frac, exp)
}

// reconRow writes one reconciliation row, cell for cell as reconValues.
func (lw *leanWorkbook) reconRow(r paybatch.ReconRow) {
	lw.x.startRow()
	lw.text(0, string(r.Category), false, true)
	lw.text(1, r.MerchantTxID, false, false)
	lw.amount(2, r.LedgerAmount)
	lw.text(4, r.LedgerStatus, true, true)
	lw.amount(5, r.ProviderAmount)
	lw.text(7, r.ProviderStatus, true, true)
	lw.text(8, r.ProviderID, false, false)
	lw.text(9, r.Reason, true, true)
	lw.text(10, r.Source.File, false, true)
	lw.text(11, r.Source.Sheet, false, true)
	if r.Source.Row > 0 {
		lw.x.integer(0, int64(r.Source.Row))
	} else {
		lw.x.blank()
	}
	lw.date(13, r.RequestedDate)
	lw.date(14, r.ProviderDate)
	if r.DateMoved() {
		lw.text(15, "moved", false, true)
	}
	lw.x.endRow()
}

func (lw *leanWorkbook) date(col int, t time.Time) {
	if t.IsZero() {
		lw.x.blank()
		return
	}
	lw.text(col, t.Format("2006-01-02"), false, true)
}

// rejectedRow writes one reader reject, cell for cell as rejectedValues.
func (lw *leanWorkbook) rejectedRow(re paybatch.RowError) {
	lw.x.startRow()
	lw.text(0, re.Source.File, false, true)
	lw.text(1, re.Source.Sheet, false, true)
	if re.Source.Row > 0 {
		lw.x.integer(0, int64(re.Source.Row))
	} else {
		lw.x.blank()
	}
	lw.text(3, re.Column, false, true)
	lw.text(4, re.Value, true, false)
	reason := ""
	if re.Err != nil {
		reason = re.Err.Error()
	}
	lw.text(5, reason, true, true)
	lw.x.endRow()
}

var sstCounts = regexp.MustCompile(`(count|uniqueCount)="\d+"`)

// finish sets the autofilters in the workbook (their defined names), has
// excelize write the small workbook, and copies it into the zip: every
// entry but the placeholders of the data sheets, and the shared strings
// with the data sheets' strings appended.
func (lw *leanWorkbook) finish(zw *zip.Writer, base int) error {
	ours := map[string]bool{}
	for _, s := range lw.sheets {
		last, err := excelize.CoordinatesToCellName(s.cols, max(s.rows, 1))
		if err != nil {
			return err
		}
		if err := lw.f.AutoFilter(s.name, "A1:"+last, nil); err != nil {
			return fmt.Errorf("sheet %s autofilter: %w", s.name, err)
		}
		ours[s.path] = true
	}
	if n := len(lw.f.SharedStrings.SI); n != base {
		return fmt.Errorf("excelize added %d shared strings after the Summary sheet", n-base)
	}
	buf, err := lw.f.WriteToBuffer()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return fmt.Errorf("excelize workbook: %w", err)
	}
	seen := map[string]bool{}
	for _, zf := range zr.File {
		switch {
		case ours[zf.Name]:
			seen[zf.Name] = true
		case zf.Name == "xl/sharedStrings.xml":
			if err := lw.mergeSST(zw, zf, base); err != nil {
				return err
			}
		default:
			if err := zw.Copy(zf); err != nil {
				return err
			}
		}
	}
	for p := range ours {
		if !seen[p] {
			return fmt.Errorf("excelize workbook has no %s for a data sheet", p)
		}
	}
	return zw.Close()
}

func (lw *leanWorkbook) mergeSST(zw *zip.Writer, zf *zip.File, base int) error {
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	old, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return err
	}
	end := bytes.LastIndex(old, []byte("</sst>"))
	start := bytes.Index(old, []byte("<sst"))
	if end < 0 || start < 0 {
		return errors.New("excelize shared strings: no <sst> element")
	}
	open := bytes.IndexByte(old[start:], '>') + start
	total := strconv.Itoa(base + len(lw.sst.order))
	head := sstCounts.ReplaceAll(old[:open], []byte(`$1="`+total+`"`))
	out, err := zw.CreateHeader(&zip.FileHeader{Name: zf.Name, Method: zip.Deflate})
	if err != nil {
		return err
	}
	b := append([]byte{}, head...)
	b = append(b, old[open:end]...)
	b = lw.sst.appendItems(b)
	b = append(b, old[end:]...)
	_, err = out.Write(b)
	return err
}

// zipPipe hands sheet XML to a goroutine that compresses it into the zip,
// so that turning rows into XML and deflating it use two cores. Buffers go
// round: the producer fills one while the goroutine compresses another.
type zipPipe struct {
	zw     *zip.Writer
	ch     chan pipeMsg
	free   chan []byte
	failed chan struct{} // closed when a write fails; err says why
	dead   chan struct{} // closed when the goroutine has stopped
	err    error
}

type pipeMsg struct {
	name string // start a new entry
	data []byte
}

func newZipPipe(zw *zip.Writer) *zipPipe {
	p := &zipPipe{zw: zw, ch: make(chan pipeMsg, 2), free: make(chan []byte, 4),
		failed: make(chan struct{}), dead: make(chan struct{})}
	for range 3 {
		p.free <- make([]byte, 0, chunkSize+64<<10)
	}
	go p.run()
	return p
}

// run compresses what the producer queues until the queue is closed;
// after a failure it only drains the queue.
func (p *zipPipe) run() {
	defer close(p.dead)
	var w io.Writer
	for m := range p.ch {
		var err error
		switch {
		case p.err != nil:
		case m.name != "":
			w, err = p.zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Deflate})
		default:
			_, err = w.Write(m.data)
		}
		if err != nil && p.err == nil {
			p.err = err
			close(p.failed)
		}
		if m.data != nil {
			select {
			case p.free <- m.data[:0]:
			default:
			}
		}
	}
}

func (p *zipPipe) create(name string) error { return p.send(pipeMsg{name: name}) }

// buffer returns an empty buffer to fill.
func (p *zipPipe) buffer() []byte {
	select {
	case b := <-p.free:
		return b
	case <-p.failed:
		return make([]byte, 0, chunkSize)
	}
}

// write queues b for compression and returns an empty buffer.
func (p *zipPipe) write(b []byte) ([]byte, error) {
	if err := p.send(pipeMsg{data: b}); err != nil {
		return b[:0], err
	}
	return p.buffer(), nil
}

func (p *zipPipe) send(m pipeMsg) error {
	select {
	case <-p.failed:
		return p.err
	default:
	}
	select {
	case p.ch <- m:
		return nil
	case <-p.failed:
		return p.err
	}
}

// close waits for everything queued to be compressed.
func (p *zipPipe) close() error {
	close(p.ch)
	<-p.dead
	return p.err
}
