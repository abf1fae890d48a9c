// Package readers turns finance's batch files (CSV or XLSX) into validated
// paybatch.Instructions, streaming: rows flow through an iterator and memory
// does not grow with the file. Every refused row is a *paybatch.RowError
// naming file, sheet, row (as the user sees it), column, value and reason;
// a file that cannot be used at all is an error wrapping
// paybatch.ErrUnusableFile or paybatch.ErrMissingColumn.
package readers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
)

// DefaultMaxFileSize is the file-size cap used when Options.MaxFileSize is
// 0: 1 GiB, far above a full 1,048,576-row sheet (≈ 60 MB as XLSX, ≈ 120 MB
// as CSV) and low enough to refuse a disk image someone picked by mistake.
const DefaultMaxFileSize int64 = 1 << 30

// maxColumns bounds the width of any row (Excel's own limit is 16,384). A
// batch needs a dozen columns; a sheet whose used range reaches further is
// refused as a file-level problem rather than read cell by cell.
const maxColumns = 1024

// Options say how to read a batch. Set them before OpenReader.
type Options struct {
	Kind         paybatch.Kind
	Sheet        string            // XLSX sheet name; "" = first sheet
	DecimalComma bool              // "1.234,56" amounts
	Aliases      map[string]string // extra header aliases from a mapping file: header as written → canonical field name
	// Rules are the provider's checks of each row (smartretry.Rules,
	// smarterpay.Rules; pipeline.RulesFor picks them by provider). nil: the
	// reader checks only what it parses (columns, amounts, dates, ids).
	Rules       paybatch.Rules
	MaxFileSize int64 // 0 → DefaultMaxFileSize
	// AcceptFormulaValues takes an XLSX formula cell in a column paybatch
	// reads at the value the spreadsheet last computed (which may be
	// stale); without it such a cell is refused.
	AcceptFormulaValues bool
	// Each, when set, is called by Validate with every row that passed its
	// own checks, in file order, so a caller that needs more than the
	// report (the web server's preview) reads the file once. Duplicates
	// across rows are known only at the end: a row Each saw may still be
	// rejected as one copy of a repeated id (Report.IsRejected says). An
	// error from Each stops Validate and is returned. at is where the row
	// starts in a CSV (OpenAt reads the file again from there); none
	// (at.Valid() false) for an XLSX or a UTF-16 text.
	Each func(in paybatch.Instruction, at Position) error

	// For tests: ahead picks when the read-ahead goroutine parses a
	// batch of rows (see aheadMode); csvBlock is the CSV byte-level
	// path's block size (0: csvBlock).
	ahead    aheadMode
	csvBlock int
}

// aheadMode says when Validate's read-ahead goroutine parses the batches
// of rows it read (prefetcher.work). Only tests choose anything but
// aheadAuto, to hold the paths to each other.
type aheadMode int

const (
	aheadAuto   aheadMode = iota // when the consumer has batches waiting (it is behind)
	aheadNever                   // the one-core path: rows one by one, parsed by the consumer
	aheadAlways                  // every batch
	aheadOdd                     // every other batch
)

// cell is one value as read: text, or for a numeric XLSX cell the number
// exactly as the XML stores it.
type cell struct {
	s       string
	num     bool
	formula bool // an XLSX formula; s is the value last computed ("" if none)
}

// source yields the non-blank rows of one sheet or CSV file.
type source interface {
	// next returns the next row that has at least one non-blank cell, with
	// its row number as the user sees it. cells is valid until the next call.
	// It returns io.EOF after the last row.
	next() (row int, cells []cell, err error)
	close() error
}

// Batch is one open batch file, positioned after its header.
type Batch struct {
	path, sheet string
	opts        Options
	spec        kindSpec
	cm          *columnMap
	src         source
	date1904    bool

	peeked      bool // the first data row is held in peekRow/peekCells
	peekRow     int
	peekCells   []cell
	peekPos     Position
	pos         Position // where the row nextRow/nextParsed returned last starts (see Position)
	rows        int
	headerCells []string

	cc      curCache // parseRow's
	ccAhead curCache // parseAhead's (the read-ahead goroutine)

	// borrowed: the rows' cells are strings over the read-ahead batch's
	// buffer, rewritten once the next batch is taken (openBatch with
	// borrow). Nothing read from them may be kept past the row: Validate
	// copies the id into its arena and reads a rejected row again from
	// copies of its cells.
	borrowed bool

	delim  rune        // CSV: every record must have the header's number of fields
	sheets []string    // XLSX: the workbook's sheets
	xs     *xlsxSource // XLSX: the sheet's reader (its merged cells, read after the rows)
}

// openFileWith opens path for reading as one input file, through open
// (nil: os.Open): a regular, non-empty file of at most maxSize bytes.
func openFileWith(path string, maxSize int64, open func(string) (*os.File, error)) (*os.File, int64, error) {
	if open == nil {
		open = os.Open
	}
	f, err := open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, fmt.Errorf("%s: %w: file not found; check the path", path, paybatch.ErrUnusableFile)
		}
		return nil, 0, fmt.Errorf("%s: %w: %v", path, paybatch.ErrUnusableFile, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w: %v", path, paybatch.ErrUnusableFile, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w: is a directory, not a CSV or XLSX file", path, paybatch.ErrUnusableFile)
	}
	if st.Size() > maxSize {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w: %d bytes is over the %d-byte limit for one input file; split it", path, paybatch.ErrUnusableFile, st.Size(), maxSize)
	}
	return f, st.Size(), nil
}

// OpenReader reads a batch of size bytes from r, named name in every
// message: it sniffs CSV vs XLSX by content (not extension) and reads the
// header. r is read, never closed; Close releases what the Batch holds.
func OpenReader(r io.ReaderAt, size int64, name string, opts Options) (*Batch, error) {
	return openBatch(r, size, name, opts, nil, readRows, nil)
}

// OpenAt is OpenReader with the rows read from at on: at is a Position
// Validate gave Each for this CSV, read with the same options, and the rows
// from there are read as Validate read them — the same rows, row numbers,
// values and verdicts (the header is read from the start of the file, as
// ever). An XLSX, a UTF-16 text or a position that is none is an error.
func OpenAt(r io.ReaderAt, size int64, name string, opts Options, at Position) (*Batch, error) {
	return openBatch(r, size, name, opts, nil, readRows, &at)
}

// readMode is how openBatch's read-ahead reads a CSV's rows.
type readMode int

const (
	// readRows: row by row, each parsed by the consumer (Batch.All).
	readRows readMode = iota
	// readOwned: whole blocks of text into batches of rows, strings of
	// their own, parsed on both cores (Validate with Each).
	readOwned
	// readBorrowed: readOwned into reused buffers (Validate without
	// Each; see Batch.borrowed).
	readBorrowed
)

// openBatch is OpenReader; a CSV's bytes are also written to hw (nil: not)
// as they are read, so one pass reads and hashes the file (see Validate),
// and its rows after the first are read as mode says — from at on, when at
// is not nil (OpenAt). With readOwned, a CSV's rows come with their
// positions (Batch.pos).
func openBatch(r io.ReaderAt, size int64, name string, opts Options, hw io.Writer, mode readMode, at *Position) (*Batch, error) {
	spec, err := specFor(opts.Kind)
	if err != nil {
		return nil, err
	}
	aliases, err := compileAliases(opts.Aliases)
	if err != nil {
		return nil, err
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if size > opts.MaxFileSize {
		return nil, fmt.Errorf("%s: %w: %d bytes is over the %d-byte limit for a batch; split the batch", name, paybatch.ErrUnusableFile, size, opts.MaxFileSize)
	}
	o, err := openSource(r, size, name, opts.Sheet, opts.AcceptFormulaValues, hw)
	if err != nil {
		return nil, err
	}
	b := &Batch{path: name, opts: opts, spec: spec, src: o.src, sheet: o.sheet, date1904: o.date1904, delim: o.delim, sheets: o.sheets}
	b.xs, _ = o.src.(*xlsxSource)
	cs, isCSV := o.src.(*csvSource)
	if isCSV {
		cs.blockSize = opts.csvBlock
		cs.positions = mode == readOwned && cs.base >= 0
	}
	if at != nil && !isCSV {
		o.src.close()
		return nil, fmt.Errorf("%s: %w: only a CSV is read from a row on", b.where(), paybatch.ErrUnusableFile)
	}
	if err := b.readHeader(aliases); err != nil {
		o.src.close()
		return nil, err
	}
	if at != nil {
		if err := cs.seek(r, size, *at); err != nil {
			o.src.close()
			return nil, err
		}
		b.peeked = false
	}
	// The header and first row were read here, so file-level problems are
	// OpenReader's errors; from now on rows are read ahead in a goroutine that
	// Close stops.
	var work func(*rowBatch)
	if isCSV && mode != readRows && opts.ahead != aheadNever {
		cs.fills = true
		if mode == readBorrowed {
			cs.borrow, b.borrowed = true, true
		}
		work = b.parseAhead
	}
	var posOf func() Position
	if isCSV && cs.positions {
		posOf = cs.position
	}
	b.src = newPrefetcher(o.src, work, opts.ahead, posOf)
	return b, nil
}

// opened is a file whose kind (CSV or XLSX) is known, positioned at its
// first row.
type opened struct {
	src      source
	sheet    string   // XLSX: the sheet read
	sheets   []string // XLSX: every sheet, for a message suggesting --sheet
	date1904 bool
	delim    rune // CSV: the delimiter
	plain    bool // CSV: UTF-8 (a BOM allowed), no "sep=" line
}

// openSource sniffs CSV vs XLSX by content and opens the one reader of
// that format.
func openSource(r io.ReaderAt, size int64, name, sheet string, acceptFormulas bool, hw io.Writer) (opened, error) {
	if size == 0 {
		return opened{}, fmt.Errorf("%s: %w: the file is empty; export it again", name, paybatch.ErrUnusableFile)
	}
	head := make([]byte, 8)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		xs, err := openXLSX(r, size, name, sheet)
		if err != nil {
			return opened{}, err
		}
		xs.acceptFormulas = acceptFormulas
		return opened{src: xs, sheet: xs.sheetName, sheets: xs.sheets, date1904: xs.date1904}, nil
	case bytes.HasPrefix(head, []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}):
		return opened{}, fmt.Errorf("%s: %w: this is a password-protected (encrypted) workbook or an old binary .xls; remove the password / save it as .xlsx or CSV", name, paybatch.ErrUnusableFile)
	case bytes.HasPrefix(head, []byte("%PDF")):
		return opened{}, fmt.Errorf("%s: %w: this is a PDF, not a CSV or XLSX file; export it from the spreadsheet as .xlsx or .csv", name, paybatch.ErrUnusableFile)
	case bytes.HasPrefix(head, []byte("PK")):
		return opened{}, fmt.Errorf("%s: %w: this looks like a damaged zip/XLSX file; save the workbook again", name, paybatch.ErrUnusableFile)
	}
	var text io.Reader = io.NewSectionReader(r, 0, size)
	if hw != nil {
		text = io.TeeReader(text, hw)
	}
	cs, err := openCSV(text, name)
	if err != nil {
		return opened{}, err
	}
	return opened{src: cs, delim: cs.comma, plain: cs.plain}, nil
}

func quoteSheets(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

func (b *Batch) where() string {
	if b.sheet != "" {
		return fmt.Sprintf("%s sheet %q", b.path, b.sheet)
	}
	return b.path
}

func (b *Batch) readHeader(aliases map[string]field) error {
	hrow, cells, err := b.src.next()
	if err == io.EOF {
		return fmt.Errorf("%s: %w: no header row (the file or sheet has no data); export the batch again", b.where(), paybatch.ErrUnusableFile)
	}
	if err != nil {
		return err
	}
	b.headerCells = make([]string, len(cells))
	for i, c := range cells {
		b.headerCells[i] = c.s
	}
	cm, err := mapHeader(b.headerCells, b.spec, aliases)
	if err != nil {
		if errors.Is(err, paybatch.ErrMissingColumn) && b.sheet != "" {
			return fmt.Errorf("%s row %d: %w; if the batch is on another sheet, pass --sheet (the sheets are %s)", b.where(), hrow, err, quoteSheets(b.sheets))
		}
		return fmt.Errorf("%s row %d: %w", b.where(), hrow, err)
	}
	b.cm = cm
	row, cells, err := b.src.next()
	if err == io.EOF {
		return fmt.Errorf("%s: %w: the header is there but no rows follow; add the batch rows", b.where(), paybatch.ErrUnusableFile)
	}
	if err != nil {
		return err
	}
	b.peeked, b.peekRow = true, row
	b.peekCells = append(b.peekCells[:0], cells...)
	if cs, ok := b.src.(*csvSource); ok && cs.positions {
		b.peekPos = cs.position()
	}
	return nil
}

// Close stops reading (the read-ahead goroutine, an XLSX sheet's reader);
// the io.ReaderAt given to OpenReader stays open, its owner's to close. It
// must be called, also after All was abandoned early.
func (b *Batch) Close() error {
	return b.src.close()
}

// Unknown lists the header cells that are not used by this batch kind, as
// written. They are reported, not fatal.
func (b *Batch) Unknown() []string { return append([]string(nil), b.cm.unknown...) }

func (b *Batch) nextRow() (int, []cell, error) {
	if b.peeked {
		b.peeked = false
		b.rows++
		b.pos = b.peekPos
		return b.peekRow, b.peekCells, nil
	}
	row, cells, err := b.src.next()
	if err == nil {
		b.rows++
		if p, ok := b.src.(*prefetcher); ok {
			b.pos = p.pos
		}
	}
	return row, cells, err
}

// nextParsed is nextRow, with the row as the read-ahead goroutine parsed
// it when it did (Batch.parseAhead; nil otherwise): its verdict, and its
// instruction when the row is not borrowed.
func (b *Batch) nextParsed() (int, []cell, *rowVerdict, *paybatch.Instruction, error) {
	p, ok := b.src.(*prefetcher)
	if b.peeked || !ok {
		row, cells, err := b.nextRow()
		return row, cells, nil, nil, err
	}
	row, cells, v, in, err := p.nextParsed()
	if err == nil {
		b.rows++
		b.pos = p.pos
	}
	return row, cells, v, in, err
}

// All streams rows in file order: (instruction, nil) for a valid row,
// (zero, *paybatch.RowError) for a rejected one (the first problem of the
// row; Validate reports all of them); any other error is fatal, ends the
// iteration and names file and row. Memory does not grow with the file.
func (b *Batch) All(ctx context.Context) iter.Seq2[paybatch.Instruction, error] {
	return func(yield func(paybatch.Instruction, error) bool) {
		var errs []paybatch.RowError
		for n := 0; ; n++ {
			if n&1023 == 0 && ctx.Err() != nil {
				yield(paybatch.Instruction{}, fmt.Errorf("%s: reading stopped: %w", b.where(), ctx.Err()))
				return
			}
			row, cells, err := b.nextRow()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(paybatch.Instruction{}, err)
				return
			}
			var in paybatch.Instruction
			in, _, errs = b.parseRow(row, cells, errs[:0])
			if len(errs) > 0 {
				re := errs[0]
				if !yield(paybatch.Instruction{}, &re) {
					return
				}
				continue
			}
			if !yield(in, nil) {
				return
			}
		}
	}
}
