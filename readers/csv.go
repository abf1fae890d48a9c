package readers

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/paybatch/paybatch"
)

// csvSource reads a CSV with encoding/csv (ReuseRecord, no reflection: the
// hot path maps fields by index itself; gocsv's reflection costs 2-3× here).
type csvSource struct {
	f     *os.File
	path  string
	r     *csv.Reader
	cells []cell
	// lineOffset is 1 when a "sep=" line was consumed before the reader.
	lineOffset int
}

// openCSV sniffs the text encoding (UTF-8 with or without BOM, UTF-16 LE/BE
// with BOM) and the delimiter (',' ';' or TAB, whichever occurs most outside
// quotes in the first non-blank line; ',' on a tie or when none occurs).
func openCSV(f *os.File, path string) (*csvSource, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	bom, _ := br.Peek(3)
	var rd io.Reader = br
	switch {
	case bytes.HasPrefix(bom, []byte{0xEF, 0xBB, 0xBF}):
		br.Discard(3)
	case bytes.HasPrefix(bom, []byte{0xFF, 0xFE}):
		rd = transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder())
	case bytes.HasPrefix(bom, []byte{0xFE, 0xFF}):
		rd = transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder())
	}
	tr := bufio.NewReaderSize(rd, 64<<10)
	peek, err := tr.Peek(64 << 10)
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
			comma, skip = m, 1
		}
	}
	r := csv.NewReader(tr)
	r.Comma = comma
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	return &csvSource{f: f, path: path, r: r, lineOffset: skip}, nil
}

func sniffDelimiter(peek []byte) rune {
	// First non-blank line, honouring quotes (a quoted header may hold a newline).
	var counts [3]int
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
		delim = '\t'
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
				return 0, nil, fmt.Errorf("%s line %d: %w: malformed CSV (%v); a field with a quote, delimiter or line break must be quoted, with quotes doubled inside",
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

func (s *csvSource) close() error { return s.f.Close() }

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
	if (c == ',' || c == ';' || c == '\t') && (peek[5] == '\n' || peek[5] == '\r') {
		return rune(c)
	}
	return 0
}
