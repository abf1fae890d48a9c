package reconcile

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/paybatch/paybatch"
)

// createStage creates the text table a file read in Go is appended to:
// one VARCHAR column per role and the row number the user sees.
func createStage(ctx context.Context, conn *sql.Conn, table string) error {
	cols := make([]string, len(stageRoles))
	for i, role := range stageRoles {
		cols[i] = role + " VARCHAR"
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE TABLE %s (%s, src_row INTEGER)`, table, strings.Join(cols, ", "))); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return nil
}

// stageCSV reads a CSV that DuckDB's reader refused, strictly and padded,
// with encoding/csv into stage_<n>, and makes src_<n> a view over it. DuckDB
// refuses some files a person would call well formed: a first record that
// stops short (its sniffer cannot read it, padded or not), a header and
// records with different line endings, and short records in a file that
// also has a line break inside a quoted value. Go reads them all, one
// record at a time (memory stays bounded), with the same rules as DuckDB's
// padded read: a record may stop short (its missing fields are empty), but
// a record with more fields than the header, a quote never closed, a quote
// inside an unquoted value or text that is not UTF-8 is refused, naming the
// line and the fix. Row numbers are the record's first line in the file.
func stageCSV(ctx context.Context, conn *sql.Conn, s *source) error {
	table := fmt.Sprintf("stage_%d", s.n)
	if err := createStage(ctx, conn, table); err != nil {
		return err
	}
	f, cr, fields, err := openCSV(s.path, s.delim)
	if err != nil {
		return err
	}
	defer f.Close()
	cr.ReuseRecord = true
	colIdx := map[string]int{}
	for i, c := range stageRoles {
		colIdx[c] = i
	}
	err = conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", table)
		if err != nil {
			return err
		}
		vals := make([]driver.Value, len(stageRoles)+1)
		for n := 1; ; n++ {
			if n%4096 == 0 && ctx.Err() != nil {
				app.Close()
				return ctx.Err()
			}
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				app.Close()
				return csvParseError(s.path, err)
			}
			line, _ := cr.FieldPos(0)
			if len(rec) > fields {
				app.Close()
				return csvRefusal{line: line, expected: fields, found: len(rec)}.rowError(s.path)
			}
			clear(vals)
			for i, role := range s.hm.roles {
				if role == "" || i >= len(rec) || rec[i] == "" {
					continue // a field left off or empty is NULL, as DuckDB reads it
				}
				if !utf8.ValidString(rec[i]) {
					app.Close()
					return &paybatch.RowError{Source: paybatch.Source{File: s.path, Row: line},
						Column: s.hm.column(role), Value: strings.ToValidUTF8(rec[i], "?"), Err: fmt.Errorf("%w: not UTF-8 text; save the file as UTF-8 (in Excel: CSV UTF-8)", paybatch.ErrUnusableFile)}
				}
				vals[colIdx[role]] = rec[i]
			}
			vals[len(stageRoles)] = int32(line)
			if err := app.AppendRow(vals...); err != nil {
				app.Close()
				return fmt.Errorf("%w: %s row %d: %v", paybatch.ErrUnusableFile, s.path, line, err)
			}
		}
		return app.Close()
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("reconcile: %s: %w", s.path, ctx.Err())
		}
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT *, %s FROM %s`, s.n, textAmount, table)); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	s.staged, s.padded, s.copied = true, false, false
	return nil
}

// openCSV opens the CSV at path for encoding/csv (a leading byte order mark
// skipped, records of any length) and reads its header; it returns the
// header's number of fields. The caller closes f. Errors are
// paybatch.ErrUnusableFile.
func openCSV(path string, delim rune) (f *os.File, cr *csv.Reader, fields int, err error) {
	if f, err = os.Open(path); err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	cr = csv.NewReader(br)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("%w: %s row 1: header: %v", paybatch.ErrUnusableFile, path, err)
	}
	return f, cr, len(header), nil
}

// csvParseError names the record encoding/csv could not read, and the fix.
func csvParseError(path string, err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	switch {
	case errors.Is(pe.Err, csv.ErrQuote):
		return csvRefusal{line: pe.StartLine, unclosed: true}.rowError(path)
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return &paybatch.RowError{Source: paybatch.Source{File: path, Row: pe.Line},
			Err: fmt.Errorf(`%w: a " inside a value that is not in quotes; put the whole value in double quotes and double the " inside it (e.g. "12"" pipe")`, paybatch.ErrUnusableFile)}
	}
	return &paybatch.RowError{Source: paybatch.Source{File: path, Row: pe.StartLine},
		Err: fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, pe.Err)}
}
