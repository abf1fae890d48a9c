package readers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/paybatch/paybatch"
)

// csvSource reads a CSV. The common record — no quote anywhere in its
// line, at most maxColumns fields — is split at the delimiter by a
// byte-level tokenizer over blocks of whole lines (one string per block, its
// cells sub-strings of it: no allocation per record). From the first line
// that holds a '"' (or on a read error) the rest of the text goes to
// encoding/csv (ReuseRecord, no reflection: the hot path maps fields by index
// itself; gocsv's reflection costs 2-3× here). Both give the same records,
// line numbers and errors: FuzzCSVTokenizer holds the tokenizer to
// encoding/csv.
type csvSource struct {
	path  string
	plain bool // UTF-8 (a BOM allowed), LF or CRLF line ends, no "sep=" line
	comma rune
	cells []cell
	// lineOffset is 1 when a "sep=" line was consumed before the text.
	lineOffset int

	// The byte-level path: in is the decoded text; carry the start of a
	// line read with the last block; blk the block of whole lines being
	// split (next), pos the next line in it; line the lines passed so far.
	in        io.Reader
	carry     []byte
	scratch   []byte
	eof, done bool // done: nothing more for the byte-level path after blk
	blk       string
	pos       int
	line      int
	blockSize int  // 0: csvBlock (tests use tiny blocks)
	slow      bool // tests: encoding/csv from the first byte
	// fills lets the read-ahead split whole blocks into its batches
	// (fill); borrow, into strings over the batch's own buffer (see
	// Batch.borrowed) rather than a string of their own per block.
	fills, borrow bool

	// r reads the rest of the text once the byte-level path handed over;
	// rOffset is added to its line numbers (the lines before its text).
	r       *csv.Reader
	rOffset int

	// Positions (see Position): base is the file offset of the text's
	// first byte (after a BOM and a "sep=" line; -1 when text offsets are
	// not file offsets: UTF-16); inOff the text read from in so far; blkOff
	// the text offset of blk (and of the block readBlock last read); rBase
	// the text offset where r's input starts, and rLine the file line at
	// r's InputOffset. With positions set, next records lastPos and split
	// the position of every row it appends.
	base      int64
	crOnly    bool
	inOff     int64
	blkOff    int64
	rBase     int64
	rLine     int
	positions bool
	lastPos   Position
}

// Position is where a row of a CSV starts in its file: a byte offset at a
// record boundary at or before the row (only blank lines or blank records
// between), and the line number there as rows are numbered. Validate gives
// it to Each; OpenAt reads the file from it again. The zero Position (Line
// 0) is none: a row of an XLSX, or of a UTF-16 text.
type Position struct {
	Offset int64
	Line   int
}

// Valid reports whether p is a position OpenAt can start at.
func (p Position) Valid() bool { return p.Line > 0 }

// csvBlock is how much text the byte-level path reads at once.
const csvBlock = 32 << 10

// openCSV sniffs the text encoding (UTF-8 with or without BOM, UTF-16 LE/BE
// with BOM), the line endings (LF, CRLF, or CR alone as old Mac exports
// write them) and the delimiter (',' ';' TAB or '|', whichever occurs most
// outside quotes in the first non-blank line; ',' on a tie or when none
// occurs).
func openCSV(f io.Reader, path string) (*csvSource, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	bom, _ := br.Peek(3)
	var rd io.Reader = br
	plain := true
	var base int64 // the file offset of the text (-1: UTF-16, not a file offset)
	switch {
	case bytes.HasPrefix(bom, []byte{0xEF, 0xBB, 0xBF}):
		br.Discard(3)
		base = 3
	case bytes.HasPrefix(bom, []byte{0xFF, 0xFE}):
		rd, plain, base = transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder()), false, -1
	case bytes.HasPrefix(bom, []byte{0xFE, 0xFF}):
		rd, plain, base = transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()), false, -1
	}
	crOnly := false
	tr := bufio.NewReaderSize(rd, 64<<10)
	peek, err := tr.Peek(64 << 10)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%s: %w: %v", path, paybatch.ErrUnusableFile, err)
	}
	if bytes.IndexByte(peek, '\n') < 0 && bytes.IndexByte(peek, '\r') >= 0 {
		// CR-only line endings: encoding/csv ends records at LF only, so
		// every CR becomes LF (a CR inside a quoted value is a line break
		// either way).
		tr, plain, crOnly = bufio.NewReaderSize(crToLF{tr}, 64<<10), false, true
		peek, err = tr.Peek(64 << 10)
	}
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%s: %w: %v", path, paybatch.ErrUnusableFile, err)
	}
	if bytes.IndexByte(peek, 0) >= 0 {
		return nil, fmt.Errorf("%s: %w: this is a binary file, not CSV or XLSX (UTF-16 text needs its byte-order mark: save as \"Unicode Text\" or UTF-8 CSV)", path, paybatch.ErrUnusableFile)
	}
	if !validUTF8Prefix(peek) {
		return nil, fmt.Errorf("%s: %w: the text is not UTF-8 (probably Excel's \"CSV (Comma delimited)\", which writes Windows-1252); save it as \"CSV UTF-8\" or \"Unicode Text\"", path, paybatch.ErrUnusableFile)
	}
	if len(bytes.TrimSpace(peek)) == 0 {
		return nil, fmt.Errorf("%s: %w: the file has no rows (only blank lines); export the batch again", path, paybatch.ErrUnusableFile)
	}
	comma, skip := sniffDelimiter(peek), 0
	// Excel's "sep=;" first line names the delimiter; it is not the header.
	if m := sepLine(peek); m != 0 {
		line, _ := tr.ReadString('\n')
		if strings.HasSuffix(line, "\n") {
			comma, skip, plain = m, 1, false
		}
		if base >= 0 {
			base += int64(len(line)) // one byte of the file for one of the text
		}
	}
	return &csvSource{path: path, comma: comma, in: tr, lineOffset: skip, plain: plain, base: base, crOnly: crOnly}, nil
}

// seek makes the source read the text of r (size bytes) from pos on, as
// if it had read every row before it (see OpenAt).
func (s *csvSource) seek(r io.ReaderAt, size int64, pos Position) error {
	if s.base < 0 {
		return fmt.Errorf("%s: %w: a UTF-16 text cannot be read from a row", s.path, paybatch.ErrUnusableFile)
	}
	if !pos.Valid() || pos.Offset < s.base || pos.Offset > size || pos.Line <= s.lineOffset {
		return fmt.Errorf("%s: %w: no row starts at offset %d, line %d", s.path, paybatch.ErrUnusableFile, pos.Offset, pos.Line)
	}
	var in io.Reader = io.NewSectionReader(r, pos.Offset, size-pos.Offset)
	if s.crOnly {
		in = crToLF{in}
	}
	s.in, s.inOff = in, pos.Offset-s.base
	s.carry, s.blk, s.pos, s.eof, s.done, s.r = s.carry[:0], "", 0, false, false, nil
	s.line = pos.Line - 1 - s.lineOffset
	return nil
}

// handOver sends the rest of the text — rest, then what is still unread —
// to encoding/csv, whose first line is line lines after the byte-level
// path's start, at text offset at.
func (s *csvSource) handOver(rest io.Reader, lines int, at int64) {
	r := csv.NewReader(bufio.NewReaderSize(rest, 64<<10))
	r.Comma = s.comma
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	s.r, s.rOffset = r, s.lineOffset+lines
	s.rBase, s.rLine = at, s.rOffset+1
}

// readBlock reads the next block of text into dst (reused): the start
// of a line carried over from the last block, then up to a block more. It
// returns the text and end, the length of its whole lines (all of it at the
// end of the text); the rest is carried over. A line with a '"' and all
// after it, or the text from a read error on, go to encoding/csv instead:
// end stops before them (ok is false after a read error: no text).
func (s *csvSource) readBlock(dst []byte) (text []byte, end int, ok bool) {
	size := s.blockSize
	if size <= 0 {
		size = csvBlock
	}
	s.blkOff = s.inOff - int64(len(s.carry))
	dst = append(dst[:0], s.carry...)
	dst = slices.Grow(dst, max(size-len(dst), 0))
	for {
		for len(dst) < cap(dst) && !s.eof {
			k, err := s.in.Read(dst[len(dst):cap(dst)])
			dst = dst[:len(dst)+k]
			s.inOff += int64(k)
			if err == io.EOF {
				s.eof = true
			} else if err != nil {
				// encoding/csv returns the records before the error, then
				// the error, as it did before this path existed.
				s.handOver(io.MultiReader(bytes.NewReader(bytes.Clone(dst)), errReader{err}), s.line, s.blkOff)
				s.carry, s.done = nil, true
				return dst, 0, false
			}
		}
		end = len(dst)
		if !s.eof {
			if end = bytes.LastIndexByte(dst, '\n') + 1; end == 0 {
				dst = slices.Grow(dst, cap(dst)) // a line longer than the block
				continue
			}
		}
		break
	}
	s.carry = append(s.carry[:0], dst[end:]...)
	s.done = s.eof && len(s.carry) == 0
	if q := bytes.IndexByte(dst[:end], '"'); q >= 0 {
		ls := bytes.LastIndexByte(dst[:q], '\n') + 1
		s.handOver(io.MultiReader(bytes.NewReader(bytes.Clone(dst[ls:])), s.in), s.line+bytes.Count(dst[:ls], []byte{'\n'}), s.blkOff+int64(ls))
		s.carry, s.done, end = nil, true, ls
	}
	return dst, end, true
}

// nextBlock reads the next block of whole lines into blk (a string of its
// own, for next).
func (s *csvSource) nextBlock() {
	text, end, _ := s.readBlock(s.scratch)
	s.scratch = text
	s.blk, s.pos = string(text[:end]), 0
}

// fill splits the next block of text into b's rows, their cells strings
// over b.text when borrowing (read into it, and reused once b is: see
// Batch.borrowed), else over a string of the block's own — or the lines
// left of a block next read, as strings of their own. It returns false
// when the text went to encoding/csv or is all read: the caller reads rows
// through next.
func (s *csvSource) fill(b *rowBatch) bool {
	if !s.fills || s.r != nil || s.pos >= len(s.blk) && s.done {
		return false
	}
	if s.pos < len(s.blk) {
		blk, off := s.blk[s.pos:], s.blkOff+int64(s.pos)
		s.blk, s.pos = "", 0
		s.split(b, blk, off)
		return true
	}
	if !s.borrow {
		text, end, _ := s.readBlock(s.scratch)
		s.scratch = text
		s.split(b, string(text[:end]), s.blkOff)
		return true
	}
	text, end, _ := s.readBlock(b.text)
	b.text = text
	s.split(b, unsafe.String(unsafe.SliceData(text), end), s.blkOff)
	return true
}

// split appends the records of blk, whole lines with no '"' at text
// offset off, to b.
func (s *csvSource) split(b *rowBatch, blk string, off int64) {
	for pos := 0; pos < len(blk); {
		lineStart := pos
		var ln string
		ln, pos = nextLine(blk, pos)
		s.line++
		if ln == "" {
			continue
		}
		start := len(b.cells)
		var blank bool
		b.cells, blank = appendFields(b.cells, ln, byte(s.comma))
		if n := len(b.cells) - start; n > maxColumns {
			b.cells, b.err = b.cells[:start], tooWide(s.path, s.line+s.lineOffset, n)
			return
		}
		if blank {
			b.cells = b.cells[:start]
			continue
		}
		b.rows = append(b.rows, s.line+s.lineOffset)
		b.ends = append(b.ends, len(b.cells))
		if s.positions {
			b.pos = append(b.pos, Position{Offset: s.base + off + int64(lineStart), Line: s.line + s.lineOffset})
		}
	}
}

// nextLine returns the line of blk at pos — without its LF, nor a CR before
// it or before the end of the text, as encoding/csv reads it — and where
// the next line starts.
func nextLine(blk string, pos int) (string, int) {
	ln := blk[pos:]
	if i := strings.IndexByte(ln, '\n'); i >= 0 {
		ln = ln[:i]
		pos += i + 1
	} else {
		pos = len(blk)
	}
	if n := len(ln); n > 0 && ln[n-1] == '\r' {
		ln = ln[:n-1]
	}
	return ln, pos
}

// appendFields appends the fields of ln (no '"' in it), split at every
// comma as encoding/csv splits them, and reports whether all are blank.
func appendFields(cells []cell, ln string, comma byte) ([]cell, bool) {
	blank := true
	for {
		i := strings.IndexByte(ln, comma)
		v := ln
		if i >= 0 {
			v = ln[:i]
		}
		if blank && (len(v) > 0 && v[0] > ' ' && v[0] < 0x80 || strings.TrimSpace(v) != "") {
			blank = false
		}
		cells = append(cells, cell{s: v})
		if i < 0 {
			return cells, blank
		}
		ln = ln[i+1:]
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// crToLF turns every CR into LF (for a file whose lines end in CR alone).
type crToLF struct{ r io.Reader }

func (c crToLF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}

func sniffDelimiter(peek []byte) rune {
	// First non-blank line, honouring quotes (a quoted header may hold a newline).
	var counts [4]int
	inQuote, seen := false, false
	for _, c := range peek {
		if c == '"' {
			inQuote = !inQuote
			continue
		}
		if inQuote {
			continue
		}
		switch c {
		case '\n', '\r':
			if seen {
				goto done
			}
			continue
		case ',':
			counts[0]++
		case ';':
			counts[1]++
		case '\t':
			counts[2]++
		case '|':
			counts[3]++
		}
		if c != ' ' {
			seen = true
		}
	}
done:
	best, delim := counts[0], ','
	if counts[1] > best {
		best, delim = counts[1], ';'
	}
	if counts[2] > best {
		best, delim = counts[2], '\t'
	}
	if counts[3] > best {
		delim = '|'
	}
	return delim
}

func (s *csvSource) next() (int, []cell, error) {
	if s.slow && s.r == nil {
		s.handOver(s.in, s.line, s.inOff)
		s.done = true
	}
	for {
		if s.pos >= len(s.blk) {
			if s.r != nil {
				return s.nextCSV()
			}
			if s.done {
				return 0, nil, io.EOF
			}
			s.nextBlock()
			continue
		}
		// One line of blk: no '"' in it, so encoding/csv would split it at
		// every delimiter; a line with nothing else is skipped.
		start := s.pos
		var ln string
		ln, s.pos = nextLine(s.blk, s.pos)
		s.line++
		if ln == "" {
			continue
		}
		var blank bool
		s.cells, blank = appendFields(s.cells[:0], ln, byte(s.comma))
		line := s.line + s.lineOffset
		if len(s.cells) > maxColumns {
			return 0, nil, tooWide(s.path, line, len(s.cells))
		}
		if blank {
			continue
		}
		if s.positions {
			s.lastPos = Position{Offset: s.base + s.blkOff + int64(start), Line: line}
		}
		return line, s.cells, nil
	}
}

func tooWide(path string, line, n int) error {
	return fmt.Errorf("%s line %d: %w: %d columns (more than %d); a batch needs a dozen — delete the unused columns", path, line, paybatch.ErrUnusableFile, n, maxColumns)
}

// nextCSV is next through encoding/csv.
func (s *csvSource) nextCSV() (int, []cell, error) {
	for {
		at := Position{Offset: s.base + s.rBase + s.r.InputOffset(), Line: s.rLine}
		rec, err := s.r.Read()
		if err == io.EOF {
			return 0, nil, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				switch {
				case errors.Is(pe.Err, csv.ErrQuote):
					return 0, nil, fmt.Errorf(`%s row %d: %w: a quoted value is never closed (a " opens it and no " ends it), or has text after its closing quote; a value in quotes must end with its quote, and a " inside it is written twice (e.g. "12"" pipe")`,
						s.path, pe.StartLine+s.rOffset, paybatch.ErrUnusableFile)
				case errors.Is(pe.Err, csv.ErrBareQuote):
					return 0, nil, fmt.Errorf(`%s row %d: %w: a " inside a value that is not in quotes; put the whole value in double quotes and double the " inside it (e.g. "12"" pipe")`,
						s.path, pe.Line+s.rOffset, paybatch.ErrUnusableFile)
				}
				return 0, nil, fmt.Errorf("%s row %d: %w: malformed CSV (%v); a field with a quote, delimiter or line break must be quoted, with quotes doubled inside",
					s.path, pe.StartLine+s.rOffset, paybatch.ErrUnusableFile, pe.Err)
			}
			return 0, nil, fmt.Errorf("%s: %w: %v", s.path, paybatch.ErrUnusableFile, err)
		}
		if len(rec) > maxColumns {
			line, _ := s.r.FieldPos(0)
			return 0, nil, tooWide(s.path, line+s.rOffset, len(rec))
		}
		if s.positions {
			// The next record starts on the line after this one's last:
			// the line its last field starts on, and the line breaks in it
			// (encoding/csv counts lines at LF, and gives a CRLF inside
			// quotes as LF).
			last, _ := s.r.FieldPos(len(rec) - 1)
			s.rLine = last + s.rOffset + strings.Count(rec[len(rec)-1], "\n") + 1
		}
		blank := true
		for _, v := range rec {
			if len(v) > 0 && v[0] > ' ' && v[0] < 0x80 || strings.TrimSpace(v) != "" {
				blank = false
				break
			}
		}
		if blank {
			continue
		}
		line, _ := s.r.FieldPos(0)
		line += s.rOffset
		if s.positions {
			s.lastPos = at
		}
		s.cells = s.cells[:0]
		for _, v := range rec {
			s.cells = append(s.cells, cell{s: v})
		}
		return line, s.cells, nil
	}
}

func (s *csvSource) close() error { return nil }

// position is the Position of the row next returned last (with positions
// set, and a text whose offsets are file offsets; none otherwise).
func (s *csvSource) position() Position {
	if s.base < 0 {
		return Position{}
	}
	return s.lastPos
}

// validUTF8Prefix reports whether b is valid UTF-8, allowing b to end in
// the middle of a character (it is a prefix of the file).
func validUTF8Prefix(b []byte) bool {
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				b = b[:i]
			}
			break
		}
	}
	return utf8.Valid(b)
}

// sepLine recognises Excel's delimiter hint, a first line "sep=;" (or
// "sep=," / "sep=<TAB>"), and returns the delimiter, or 0.
func sepLine(peek []byte) rune {
	if len(peek) < 6 || !bytes.EqualFold(peek[:4], []byte("sep=")) {
		return 0
	}
	c := peek[4]
	if (c == ',' || c == ';' || c == '\t' || c == '|') && (peek[5] == '\n' || peek[5] == '\r') {
		return rune(c)
	}
	return 0
}
