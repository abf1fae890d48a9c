package reconcile

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
)

// DuckDB's CSV reader says what it refused in its message: the line, and
// for a record of the wrong length the field counts. Its advice (reader
// options such as null_padding or ignore_errors) means nothing to the person
// who has to fix the file, so csvError says it again in their terms. A
// message these do not match is passed on as DuckDB gave it.
var (
	csvLineRE     = regexp.MustCompile(`CSV Error on Line: (\d+)`)
	csvFieldsRE   = regexp.MustCompile(`Expected Number of Columns: (\d+) Found: (\d+)`)
	csvFileRE     = regexp.MustCompile(`(?m)^\s*file = (.+)$`)
	csvUnclosedRE = regexp.MustCompile(`unterminated quote`)
	csvQuotedNLRE = regexp.MustCompile(`null_padding in conjunction with quoted new lines`)
)

// csvRefusal is one refusal of DuckDB's CSV reader, read from its message.
type csvRefusal struct {
	line            int
	expected, found int  // field counts, when the record had the wrong number
	unclosed        bool // a quote opened and never closed
	quotedNewline   bool // a line break inside quotes where short records are padded
}

func readRefusal(err error) (csvRefusal, bool) {
	if err == nil {
		return csvRefusal{}, false
	}
	msg := err.Error()
	m := csvLineRE.FindStringSubmatch(msg)
	if m == nil {
		return csvRefusal{}, false
	}
	r := csvRefusal{}
	r.line, _ = strconv.Atoi(m[1])
	if f := csvFieldsRE.FindStringSubmatch(msg); f != nil {
		r.expected, _ = strconv.Atoi(f[1])
		r.found, _ = strconv.Atoi(f[2])
	}
	r.unclosed = csvUnclosedRE.MatchString(msg)
	r.quotedNewline = csvQuotedNLRE.MatchString(msg)
	return r, r.expected > 0 || r.unclosed || r.quotedNewline
}

func (r csvRefusal) short() bool { return r.expected > 0 && r.found < r.expected }

// rowError says what is wrong with the record and how to fix it.
func (r csvRefusal) rowError(path string) *paybatch.RowError {
	var why string
	switch {
	case r.unclosed:
		why = `a quoted value is never closed (a " opens it and no " ends it), or has text after its closing quote; a value in quotes must end with its quote, and a " inside it is written twice (e.g. "12"" pipe")`
	case r.quotedNewline:
		why = "a line break inside a quoted value, in a file whose records do not all have the header's number of fields; give every record all its fields"
	case r.found > r.expected:
		why = fmt.Sprintf("%d fields where the header has %d; a value that contains the delimiter must be in double quotes (e.g. \"1,234.00\"), or the extra field removed", r.found, r.expected)
	default:
		why = fmt.Sprintf("%d fields where the header has %d; add the missing fields", r.found, r.expected)
	}
	return &paybatch.RowError{Source: paybatch.Source{File: path, Row: r.line},
		Err: fmt.Errorf("%w: %s", paybatch.ErrUnusableFile, why)}
}

// csvError explains why the CSV at path could not be read: strict is the
// error of the strict read (never nil), padded that of the read with short
// records padded (nil when it was not tried). A short record is only a problem when
// the padded read failed too, so the padded read's reason is given then;
// the one mix paybatch cannot read, short records and a line break inside
// quotes, is named with both lines.
func csvError(path string, strict, padded error) error {
	s, sok := readRefusal(strict)
	p, pok := readRefusal(padded)
	switch {
	case padded == nil:
		if sok {
			return s.rowError(path)
		}
		return strict
	case sok && s.short() && pok && p.quotedNewline:
		return &paybatch.RowError{Source: paybatch.Source{File: path, Row: s.line},
			Err: fmt.Errorf("%w: %d fields where the header has %d, and line %d has a line break inside a quoted value; paybatch reads a file with short records or one with line breaks inside quotes, but not both: add the missing fields",
				paybatch.ErrUnusableFile, s.found, s.expected, p.line)}
	case sok && s.short() && pok:
		return p.rowError(path)
	case sok:
		return s.rowError(path)
	case strict.Error() == padded.Error():
		return strict
	}
	return fmt.Errorf("%w (read again with short records padded: %v)", strict, padded)
}

// stageable says whether a CSV that DuckDB refused strictly (strict) and
// padded (padded) is worth reading in Go (stageCSV): when the padded read
// refused a line break inside quotes in a file with short records, the one
// mix DuckDB cannot read, or when both are refusals of the CSV reader that
// csvError does not know (an invalid byte, line endings that change: Go
// reads the file or names the line). A record both readers refuse (more fields than the header, a quote
// never closed) is not: csvError names it without reading the file again.
func stageable(strict, padded error) bool {
	s, sok := readRefusal(strict)
	p, pok := readRefusal(padded)
	switch {
	case sok && s.short() && pok && p.quotedNewline:
		return true
	case sok || pok:
		return false
	}
	// any other refusal of the CSV reader (not, say, running out of memory)
	csvReader := func(err error) bool {
		return err != nil && (strings.Contains(err.Error(), "CSV") || strings.Contains(err.Error(), "sniffing"))
	}
	return csvReader(strict) && csvReader(padded)
}

// csvErrorFile is the file DuckDB's message names, for an error of a query
// over several files ("" when it names none).
func csvErrorFile(err error) string {
	if err == nil {
		return ""
	}
	if m := csvFileRE.FindStringSubmatch(err.Error()); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

// diagnoseCSV finds what DuckDB's sniffer refused in the first lines of a
// CSV: its message names no line, so the same lines are read here, strictly,
// with encoding/csv (records of the header's length, quotes closed). It
// reports whether it found a refusal, and stops after sniffLines records:
// past them DuckDB names the line itself (csvError).
func diagnoseCSV(path string, delim rune, fields int) (csvRefusal, bool) {
	const sniffLines = 4096 // DuckDB samples 2,048 (sample_size in csvFrom)
	f, cr, _, err := openCSV(path, delim)
	if err != nil {
		return csvRefusal{}, false
	}
	defer f.Close()
	for range sniffLines {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return csvRefusal{}, false
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrBareQuote) {
			continue // DuckDB reads a " inside an unquoted value as itself
		}
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrQuote) {
			return csvRefusal{line: pe.StartLine, unclosed: true}, true
		}
		if err != nil {
			return csvRefusal{}, false
		}
		if len(rec) != fields {
			line, _ := cr.FieldPos(0)
			return csvRefusal{line: line, expected: fields, found: len(rec)}, true
		}
	}
	return csvRefusal{}, false
}
