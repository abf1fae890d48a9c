package readers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/paybatch/paybatch"
)

// csvSource reads a CSV with encoding/csv (ReuseRecord, no reflection: the
// hot path maps fields by index itself; gocsv's reflection costs 2-3× here).
type csvSource struct {
	path  string
	plain bool // UTF-8 (a BOM allowed), LF or CRLF line ends, no "sep=" line
	r     *csv.Reader
	cells []cell
	// lineOffset is 1 when a "sep=" line was consumed before the reader.
	lineOffset int
}

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
	switch {
	case bytes.HasPrefix(bom, []byte{0xEF, 0xBB, 0xBF}):
		br.Discard(3)
	case bytes.HasPrefix(bom, []byte{0xFF, 0xFE}):
		rd, plain = transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder()), false
	case bytes.HasPrefix(bom, []byte{0xFE, 0xFF}):
		rd, plain = transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()), false
	}
	tr := bufio.NewReaderSize(rd, 64<<10)
	peek, err := tr.Peek(64 << 10)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%s: %w: %v", path, paybatch.ErrUnusableFile, err)
	}
	if bytes.IndexByte(peek, '\n') < 0 && bytes.IndexByte(peek, '\r') >= 0 {
		// CR-only line endings: encoding/csv ends records at LF only, so
		// every CR becomes LF (a CR inside a quoted value is a line break
		// either way).
		tr, plain = bufio.NewReaderSize(crToLF{tr}, 64<<10), false
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
	}
	r := csv.NewReader(tr)
	r.Comma = comma
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	return &csvSource{path: path, r: r, lineOffset: skip, plain: plain}, nil
}

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
	for {
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
						s.path, pe.StartLine+s.lineOffset, paybatch.ErrUnusableFile)
				case errors.Is(pe.Err, csv.ErrBareQuote):
					return 0, nil, fmt.Errorf(`%s row %d: %w: a " inside a value that is not in quotes; put the whole value in double quotes and double the " inside it (e.g. "12"" pipe")`,
						s.path, pe.Line+s.lineOffset, paybatch.ErrUnusableFile)
				}
				return 0, nil, fmt.Errorf("%s row %d: %w: malformed CSV (%v); a field with a quote, delimiter or line break must be quoted, with quotes doubled inside",
					s.path, pe.StartLine+s.lineOffset, paybatch.ErrUnusableFile, pe.Err)
			}
			return 0, nil, fmt.Errorf("%s: %w: %v", s.path, paybatch.ErrUnusableFile, err)
		}
		if len(rec) > maxColumns {
			line, _ := s.r.FieldPos(0)
			line += s.lineOffset
			return 0, nil, fmt.Errorf("%s line %d: %w: %d columns (more than %d); a batch needs a dozen — delete the unused columns", s.path, line, paybatch.ErrUnusableFile, len(rec), maxColumns)
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
		line += s.lineOffset
		s.cells = s.cells[:0]
		for _, v := range rec {
			s.cells = append(s.cells, cell{s: v})
		}
		return line, s.cells, nil
	}
}

func (s *csvSource) close() error { return nil }

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
