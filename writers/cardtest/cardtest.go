// Package cardtest finds card numbers that escaped masking: every 13 to 19
// digit number that passes the Luhn check, in text, in files of every format
// paybatch writes (CSV, JSON, logs, XLSX, Parquet, DuckDB), and in whole
// output trees. It is a test helper: paybatch never imports it.
//
// A number is read the way paybatch.MaskCardNumbers reads one: a run of
// digits, optionally grouped by single spaces or hyphens. A masked number
// ("411111******1111") is broken by its '*' and is not found.
package cardtest

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // reads Parquet and DuckDB files
)

// Numbers are Luhn-valid test card numbers in the ways people write them:
// plain, grouped by spaces and by hyphens, 13 to 19 digits.
var Numbers = []string{
	"4111111111111111",        // Visa, 16
	"5555 5555 5555 4444",     // Mastercard, grouped by spaces
	"3782-822463-10005",       // Amex, 15, grouped by hyphens
	"4222222222222",           // Visa, 13
	"6011000990139424",        // Discover
	"4012 8888 8888 1881",     // Visa, spaces
	"6250941006528599",        // UnionPay
	"3530111333300000",        // JCB
	"4000056655665556",        // Visa debit
	"5200828282828210",        // Mastercard debit
	"6759649826438453",        // Maestro
	"4111 1111 1111 1111 003", // 19 digits, spaces
}

// Luhn reports whether the digits of s (other characters ignored) pass the
// Luhn check.
func Luhn(s string) bool {
	sum, n := 0, 0
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n > 0 && sum%10 == 0
}

// Find returns every unmasked card number in s: each run of 13 to 19 digits
// (single spaces or hyphens allowed between digits) that passes Luhn —
// except the fraction of a decimal number (a run right after a digit and a
// point, "1.9193846209999998"): a float written in full (a duration in the
// metrics file) has 16 such digits, and one in ten passes Luhn.
func Find(s string) []string {
	var out []string
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j, digits, end := i, 0, i
		for j < len(s) {
			if isDigit(s[j]) {
				digits++
				j++
				end = j
				continue
			}
			if (s[j] == ' ' || s[j] == '-') && j+1 < len(s) && isDigit(s[j+1]) {
				j++
				continue
			}
			break
		}
		fraction := i >= 2 && s[i-1] == '.' && isDigit(s[i-2])
		if run := s[i:end]; digits >= 13 && digits <= 19 && !fraction && Luhn(run) {
			out = append(out, run)
		}
		i = end
	}
	return out
}

// Leak is an unmasked card number found in an output.
type Leak struct {
	Where  string // file (and part: zip entry, table.column, Parquet row) or stream name
	Number string
	Line   string // the text around it
}

func (l Leak) String() string { return fmt.Sprintf("%s: %q in %q", l.Where, l.Number, l.Line) }

// Text returns the leaks in s, named where.
func Text(where, s string) []Leak {
	var out []Leak
	for _, line := range strings.Split(s, "\n") {
		for _, n := range Find(line) {
			if len(line) > 200 {
				k := strings.Index(line, n)
				line = line[max(0, k-80):min(len(line), k+len(n)+80)]
			}
			out = append(out, Leak{Where: where, Number: n, Line: line})
		}
	}
	return out
}

// File returns the leaks in one file, read by its format: an XLSX (any
// zip) entry by entry, a Parquet file and a DuckDB database through DuckDB
// (every table, every column as text: their strings are compressed on
// disk, so a byte scan would miss them), anything else as text.
func File(path string) ([]Leak, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return zipFile(path, b)
	case bytes.HasPrefix(b, []byte("PAR1")):
		return parquetFile(path)
	case len(b) >= 12 && string(b[8:12]) == "DUCK":
		return duckdbFile(path)
	}
	return Text(path, string(b)), nil
}

func zipFile(path string, b []byte) ([]Leak, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Leak
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		out = append(out, Text(path+"!"+f.Name, string(data))...)
	}
	return out, nil
}

func parquetFile(path string) ([]Leak, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return queryText(db, path+"!", `SELECT * FROM read_parquet(`+literal(path)+`)`)
}

func duckdbFile(path string) ([]Leak, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH `+literal(path)+` AS scanned (READ_ONLY)`); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'scanned'`)
	if err != nil {
		return nil, err
	}
	var tables [][2]string
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, [2]string{s, t})
	}
	rows.Close()
	var out []Leak
	for _, t := range tables {
		name := `scanned.` + ident(t[0]) + `.` + ident(t[1])
		leaks, err := queryText(conn, path+"!"+t[1], `SELECT * FROM `+name)
		if err != nil {
			return nil, err
		}
		out = append(out, leaks...)
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// queryText scans every value of every row of q as text.
func queryText(db querier, where, q string) ([]Leak, error) {
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []Leak
	n := 0
	for rows.Next() {
		n++
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for i, v := range vals {
			var s string
			switch x := v.(type) {
			case nil:
				continue
			case string:
				s = x
			case []byte:
				s = string(x)
			default:
				s = fmt.Sprint(x)
			}
			out = append(out, Text(fmt.Sprintf("%s row %d column %s", where, n, cols[i]), s)...)
		}
	}
	return out, rows.Err()
}

// Dir returns the leaks in every regular file under dir.
func Dir(dir string) ([]Leak, error) {
	var out []Leak
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		leaks, err := File(p)
		if err != nil {
			return err
		}
		out = append(out, leaks...)
		return nil
	})
	return out, err
}

// NoLeaks fails tb with every leak found in the paths (files or directories).
func NoLeaks(tb testing.TB, paths ...string) {
	tb.Helper()
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			tb.Errorf("cardtest: %v", err)
			continue
		}
		var leaks []Leak
		if st.IsDir() {
			leaks, err = Dir(p)
		} else {
			leaks, err = File(p)
		}
		if err != nil {
			tb.Errorf("cardtest: %v", err)
		}
		for _, l := range leaks {
			tb.Errorf("unmasked card number: %s", l)
		}
	}
}

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func ident(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
