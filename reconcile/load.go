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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

// InputError lists the problems found in one input file (at most the first
// 20, in file order). Nothing of the file was loaded.
type InputError struct {
	File     string
	Problems []*paybatch.RowError
}

func (e *InputError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s), nothing loaded", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap exposes every RowError (so errors.Is(err, paybatch.ErrBadAmount) works).
func (e *InputError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}

// LoadLedger adds the merchant's ledger export (CSV, XLSX or Parquet; sheet
// picks the XLSX sheet, "" = the first). It needs merchant_transaction_id,
// amount and currency columns; type, date and expected_status are optional.
//
// Loading checks the file's structure (that it can be read, its columns, at
// least one line) and returns an error naming what is wrong. Its lines are
// read by Run, in one pass over every file: every amount is converted
// exactly to minor units, or Run refuses the file with an *InputError naming
// row, column and value, and the reconcile goes on without that file.
func (r *Reconciler) LoadLedger(ctx context.Context, path, sheet string) error {
	return r.loadFile(ctx, kindLedger, path, sheet)
}

// LoadResults adds a provider results file (CSV, XLSX or Parquet) with
// merchant_transaction_id, amount, currency and status columns (optional
// transaction_id, type, date, reason). Statuses of both providers are
// understood (sql/vocab.sql); any other status refuses the file when Run
// reads it (see LoadLedger).
func (r *Reconciler) LoadResults(ctx context.Context, path, sheet string) error {
	return r.loadFile(ctx, kindResults, path, sheet)
}

// source is one loaded file. Its lines are read through two views: src_<n>,
// the file's columns by role (straight from read_parquet or read_csv, or
// from stage_<n>, the table an XLSX sheet or a CSV's text copy is appended
// to), and checked_<n> (sql/checked.sql), the same lines checked and
// converted.
type source struct {
	n           int
	kind        fileKind
	path, sheet string
	format      string // "csv", "parquet" or "xlsx"
	hm          headerMap
	csvRead     string // CSV: the read_csv(...) call of src_<n>, padding left open (csvFrom)
	padded      bool   // CSV: read with null_padding, single-threaded (padCSV)
	firstSeen   bool   // CSV: a first non-blank record was read in Go (firstRecord)
	copied      bool   // CSV: src_<n> reads the text copy stage_<n>
	staged      bool   // CSV: read in Go into stage_<n> (stageCSV), not by DuckDB
	delim       rune   // CSV: the delimiter
	inserted    bool   // the lines are in ledger or provider
}

func (s *source) sql(name string) string {
	q := strings.ReplaceAll(query(name), "/*n*/", strconv.Itoa(s.n))
	return strings.ReplaceAll(q, "/*kind*/", quoteLiteral(string(s.kind)))
}

func (r *Reconciler) loadFile(ctx context.Context, kind fileKind, path, sheet string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran, r.built = false, false
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()

	s := &source{n: r.loads + 1, kind: kind, path: path, sheet: sheet}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".csv", ".txt", ".tsv":
		s.format = "csv"
		err = sourceCSV(ctx, conn, s)
	case ".parquet", ".pq":
		s.format = "parquet"
		err = sourceParquet(ctx, conn, s)
	case ".xlsx", ".xlsm":
		s.format = "xlsx"
		err = sourceXLSX(ctx, conn, s)
	default:
		err = fmt.Errorf("%w: %s: unsupported file type %q (use .csv, .xlsx or .parquet)", paybatch.ErrUnusableFile, path, ext)
	}
	if err == nil {
		err = withPadding(ctx, conn, s, func() error { return checkSource(ctx, conn, s) })
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, `INSERT OR REPLACE INTO loads VALUES (?, ?, ?)`, s.n, path, s.sheet)
	}
	if err != nil {
		dropSource(conn, s)
		var re *paybatch.RowError
		if errors.Is(err, paybatch.ErrUnusableFile) || errors.As(err, &re) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	r.loads = s.n
	r.sources = append(r.sources, s)
	if kind == kindLedger {
		r.ledgers++
	}
	return nil
}

// checkSource creates the checked_<n> view of s and reads its first line.
func checkSource(ctx context.Context, conn *sql.Conn, s *source) error {
	if _, err := conn.ExecContext(ctx, s.sql("checked")); err != nil {
		return err
	}
	if s.firstSeen {
		return nil
	}
	return checkHasLines(ctx, conn, s)
}

// checkHasLines refuses a file without a single non-blank line. Only the
// start of the file is read (the first line that is not blank ends it).
func checkHasLines(ctx context.Context, conn *sql.Conn, s *source) error {
	var n int
	q := fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM checked_%d WHERE NOT blank LIMIT 1)`, s.n)
	if err := conn.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, s.path, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s: the %s has a header but no rows", paybatch.ErrUnusableFile, s.path, s.kind)
	}
	return nil
}

// dropSource removes what loading s created (a failed load leaves nothing).
func dropSource(conn *sql.Conn, s *source) {
	ctx := context.Background()
	conn.ExecContext(ctx, fmt.Sprintf(`DROP VIEW IF EXISTS checked_%d`, s.n))
	conn.ExecContext(ctx, fmt.Sprintf(`DROP VIEW IF EXISTS src_%d`, s.n))
	conn.ExecContext(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS stage_%d`, s.n))
	conn.ExecContext(ctx, `DELETE FROM loads WHERE load_no = ?`, s.n)
}

// insertLines moves the lines of s into ledger or provider (for Rows, the
// exports and --db). A CSV is first copied as text into stage_<n>, whose row
// order gives the row numbers read_csv cannot. A line with a problem fails
// the insert whole, and the problems are named in an *InputError.
func insertLines(ctx context.Context, conn *sql.Conn, s *source) error {
	if s.inserted {
		return nil
	}
	if s.duckCSV() && !s.copied {
		for _, q := range []string{
			fmt.Sprintf(`CREATE OR REPLACE TABLE stage_%d AS SELECT * EXCLUDE (src_row) FROM src_%d`, s.n, s.n),
			// the header is row 1; records are in file order (preserve_insertion_order)
			fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT *, (rowid + 2)::INTEGER AS src_row FROM stage_%d`, s.n, s.n),
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, s.path, err)
			}
		}
		s.copied = true
	}
	target := "to_ledger"
	if s.kind == kindResults {
		target = "to_provider"
	}
	// ledger and provider lines are ordered by seq, never by insertion, so
	// the insert may run unordered (faster).
	if _, err := conn.ExecContext(ctx, `SET preserve_insertion_order = false`); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	_, err := conn.ExecContext(ctx, s.sql(target))
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `SET preserve_insertion_order = true`); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("reconcile: %s: %w", s.path, ctx.Err())
		}
		// the failed INSERT loaded nothing (its transaction rolled back)
		if perr := problems(ctx, conn, s); perr != nil {
			return perr
		}
		return fmt.Errorf("reconcile: %s: %w", s.path, err)
	}
	s.inserted = true
	if s.copied {
		// the text copy has served (row numbers are in the lines now)
		for _, q := range []string{
			csvView(s),
			fmt.Sprintf(`DROP TABLE IF EXISTS stage_%d`, s.n),
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("reconcile: %s: %w", s.path, err)
			}
		}
		s.copied = false
	}
	return nil
}

var sentinelOf = map[string]error{
	roleID: paybatch.ErrMissingField, roleAmount: paybatch.ErrBadAmount, roleCurrency: paybatch.ErrBadCurrency,
	roleStatus: paybatch.ErrBadField, roleExpectedStatus: paybatch.ErrBadField,
}

// problems names the first problems of s (sql/problems.sql).
func problems(ctx context.Context, conn *sql.Conn, s *source) error {
	path, sheet, hm := s.path, s.sheet, s.hm
	rows, err := conn.QueryContext(ctx, s.sql("problems"))
	if err != nil {
		return fmt.Errorf("reconcile: %s: check rows: %w", path, err)
	}
	defer rows.Close()
	ie := &InputError{File: path}
	for rows.Next() {
		var row int
		var role, value, reason string
		if err := rows.Scan(&row, &role, &value, &reason); err != nil {
			return fmt.Errorf("reconcile: %s: %w", path, err)
		}
		ie.Problems = append(ie.Problems, &paybatch.RowError{
			Source: paybatch.Source{File: path, Sheet: sheet, Row: row},
			Column: hm.column(role), Value: value,
			Err: fmt.Errorf("%w: %s", sentinelOf[role], reason),
		})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reconcile: %s: check rows: %w", path, err)
	}
	if len(ie.Problems) > 0 {
		return ie
	}
	return nil
}

func queryStrings(ctx context.Context, conn *sql.Conn, q string, args ...any) ([]string, error) {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// sourceCSV reads the header in Go (to match it and pick the delimiter) and
// makes src_<n> a view over DuckDB's CSV reader, every column as text
// (all_varchar: DuckDB must never guess a type, it would read amounts as
// DOUBLE). Row numbers are not known to read_csv; insertLines makes a text
// copy for them when the lines are needed one by one.
func sourceCSV(ctx context.Context, conn *sql.Conn, s *source) error {
	path := s.path
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	line = strings.TrimPrefix(line, "\ufeff")
	if strings.TrimSpace(line) == "" {
		return fmt.Errorf("%w: %s is empty (no header row)", paybatch.ErrUnusableFile, path)
	}
	delim := sniffDelim(line)
	s.delim = delim
	cr := csv.NewReader(strings.NewReader(line))
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%w: %s row 1: header: %v", paybatch.ErrUnusableFile, path, err)
	}
	if s.hm, err = mapHeader(s.kind, path, "", header); err != nil {
		return err
	}
	if err := firstRecord(br, delim, s); err != nil {
		return err
	}
	names := s.hm.names()
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = quoteLiteral(n)
	}
	// A view cannot hold bound parameters: the path and the column names are
	// string literals (single quotes doubled); the delimiter is one of ours.
	// Every column is text (all_varchar: DuckDB must never guess a type, it
	// would read amounts as DOUBLE) and the dialect is given, so DuckDB's
	// sniffer, which runs each time a query binds the view, is held to 2,048
	// lines (its default 20,480 took ~0.1 s per file per query). Turning it
	// off (auto_detect = false with typed columns) was tried: the read then
	// needed more memory (a 10M-line CSV ran out of a 1GB limit) and was
	// slower (BENCHMARKS.md). Its buffers are 4 MB instead of the default
	// 32 MB: each bind and each reading thread touches a buffer, fresh
	// memory is slow to fault in, and the buffers count against DuckDB's
	// memory limit (1M lines: Run 1.0-1.1 s -> 0.9 s and the first bind
	// 0.12 s -> 0.04 s; 10M lines: Run 11.3-12.0 s -> 8.4-9.3 s). A record
	// longer than the buffer is read in Go (stageCSV), as one longer than
	// DuckDB's 2 MB max_line_size was before.
	s.csvRead = fmt.Sprintf(`(SELECT %s, NULL::INTEGER AS src_row FROM read_csv(%s, header = false, skip = 1, all_varchar = true, sample_size = 2048, buffer_size = 4194304, delim = %s, quote = '"', escape = '"', names = [%s], null_padding = /*null_padding*/))`,
		roleColumns(s.hm, false), quoteLiteral(path), quoteLiteral(string(delim)), strings.Join(quoted, ", "))
	// binding sniffs the first lines: a record there that stops short
	// already fails the strict read
	if _, err := conn.ExecContext(ctx, csvView(s)); err != nil && !padCSV(ctx, conn, s, err) {
		// refused strict and padded; the sniffer's message names no line
		if ref, found := diagnoseCSV(path, delim, len(header)); found && !ref.short() {
			return ref.rowError(path)
		}
		// a first record that stops short, or line endings that change:
		// DuckDB's sniffer cannot read them, Go can
		return stageCSV(ctx, conn, s)
	}
	return nil
}

// csvFrom is the read_csv(...) call src_<n> reads a CSV through. A CSV is
// first read strictly: every record must have the header's number of
// fields. DuckDB then reads it in parallel, and handles line breaks inside
// quoted fields. With null_padding, which lets a record stop short (the
// missing fields are NULL), DuckDB reads single-threaded, about 4 times
// slower, and refuses line breaks inside quotes; it is used only for a file
// the strict read refused (padCSV). A well-formed file gives the same
// records either way.
func (s *source) csvFrom() string {
	return strings.Replace(s.csvRead, "/*null_padding*/", strconv.FormatBool(s.padded), 1)
}

// duckCSV reports whether s is a CSV read by DuckDB's CSV reader (not yet
// read in Go by stageCSV).
func (s *source) duckCSV() bool { return s.format == "csv" && !s.staged }

// csvView (re)creates src_<n> over the CSV reader.
func csvView(s *source) string {
	return fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT * FROM %s`, s.n, s.csvFrom())
}

// withPadding runs read over s. When a CSV's strict read is refused it
// pads the file (padCSV) and runs read once more. When that is refused too
// and Go can read what DuckDB cannot (stageable), the file is read in Go
// (stageCSV) and read runs a last time; otherwise the refusal is explained
// (csvError).
func withPadding(ctx context.Context, conn *sql.Conn, s *source, read func() error) error {
	err := read()
	if err == nil || !s.duckCSV() {
		return err
	}
	var perr error
	if padCSV(ctx, conn, s, err) {
		if perr = read(); perr == nil {
			return nil
		}
		if !s.inserted && stageable(err, perr) {
			if serr := stageCSV(ctx, conn, s); serr != nil {
				return serr
			}
			return read()
		}
	}
	return csvError(s.path, err, perr)
}

// padCSV switches a CSV that was read strictly to padded reading after
// err, unless err is about its values (an *InputError) or the context is
// done. It reports whether it did: the caller then tries once more.
func padCSV(ctx context.Context, conn *sql.Conn, s *source, err error) bool {
	var ie *InputError
	if !s.duckCSV() || s.padded || s.inserted || ctx.Err() != nil || errors.As(err, &ie) {
		return false
	}
	s.padded = true
	if _, verr := conn.ExecContext(ctx, csvView(s)); verr != nil {
		s.padded = false
		return false
	}
	return true
}

// firstRecord reads on from the header to the first record with an id,
// amount, currency or status, so that a file without one is refused now
// (DuckDB, asked for one line, parses most of a large file first). A record
// encoding/csv cannot read is left for DuckDB to judge.
func firstRecord(r io.Reader, delim rune, s *source) error {
	cr := csv.NewReader(r)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	var roles []int
	for i, role := range s.hm.roles {
		switch role {
		case roleID, roleAmount, roleCurrency, roleStatus, roleExpectedStatus:
			roles = append(roles, i)
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s: the %s has a header but no rows", paybatch.ErrUnusableFile, s.path, s.kind)
		}
		if err != nil {
			return nil
		}
		for _, i := range roles {
			if i < len(rec) && strings.TrimSpace(rec[i]) != "" {
				s.firstSeen = true
				return nil
			}
		}
	}
}

// roleColumns is the select list of a src_<n> view: every role (the file's
// column of that name, or NULL text when the file has none), and the typed
// amount columns (NULL: the amount is text).
func roleColumns(hm headerMap, typed bool) string {
	var cols []string
	for _, role := range stageRoles {
		if _, ok := hm.original[role]; ok {
			cols = append(cols, quoteIdent(role))
		} else {
			cols = append(cols, "NULL::VARCHAR AS "+role)
		}
	}
	if !typed {
		cols = append(cols, textAmount)
	}
	return strings.Join(cols, ", ")
}

// textAmount are the typed amount columns of a src_<n> view whose amount is
// text: amount_v, amount_frac and amount_present (see typedAmount) are NULL,
// and so is amount_shown (the text of a typed amount, shown in problems).
const textAmount = "NULL::BIGINT AS amount_v, NULL::INTEGER AS amount_frac, NULL::BOOLEAN AS amount_present, NULL::VARCHAR AS amount_shown"

// sniffDelim picks the most frequent of , ; TAB | outside quotes in the header.
func sniffDelim(line string) rune {
	counts := map[rune]int{}
	inQ := false
	for _, c := range line {
		switch {
		case c == '"':
			inQ = !inQ
		case !inQ && strings.ContainsRune(",;\t|", c):
			counts[c]++
		}
	}
	best := ','
	for _, c := range []rune{';', '\t', '|'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}

// sourceParquet maps the Parquet column names and makes src_<n> a view
// over read_parquet: text columns as text, a DECIMAL or integer amount typed
// (typedAmount), row numbers from file_row_number. Float amounts are refused:
// their text is not the amount that was meant.
func sourceParquet(ctx context.Context, conn *sql.Conn, s *source) error {
	path := s.path
	rows, err := conn.QueryContext(ctx, `SELECT * FROM read_parquet(?) LIMIT 0`, path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	types, err := rows.ColumnTypes()
	rows.Close()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	header := make([]string, len(types))
	for i, t := range types {
		header[i] = t.Name()
	}
	hm, err := mapHeader(s.kind, path, "", header)
	if err != nil {
		return err
	}
	s.hm = hm
	byRole := map[string]string{}
	typed := textAmount
	for i, role := range hm.roles {
		if role == "" {
			continue
		}
		tn := strings.ToUpper(types[i].DatabaseTypeName())
		if role == roleAmount && (strings.Contains(tn, "FLOAT") || strings.Contains(tn, "DOUBLE") || tn == "REAL") {
			return &paybatch.RowError{Source: paybatch.Source{File: path},
				Column: header[i], Err: fmt.Errorf("%w: the amount column is %s, a binary float that cannot hold amounts exactly; export it as DECIMAL, integer or text",
					paybatch.ErrBadAmount, tn)}
		}
		byRole[role] = fmt.Sprintf("CAST(%s AS VARCHAR) AS %s", quoteIdent(header[i]), role)
		if role == roleAmount {
			if v, ok := typedAmount(quoteIdent(header[i]), types[i]); ok {
				// read typed; its text only to show in a problem
				typed = v + fmt.Sprintf(", CAST(%s AS VARCHAR) AS amount_shown", quoteIdent(header[i]))
				byRole[role] = "NULL::VARCHAR AS " + role
			}
		}
	}
	var cols []string
	for _, role := range stageRoles {
		c, ok := byRole[role]
		if !ok {
			c = "NULL::VARCHAR AS " + role
		}
		cols = append(cols, c)
	}
	cols = append(cols, typed)
	// A view cannot hold a bound parameter: the path is a string literal
	// (single quotes doubled), the column names quoted identifiers.
	q := fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT %s, (file_row_number + 1)::INTEGER AS src_row FROM read_parquet(%s, file_row_number = true)`,
		s.n, strings.Join(cols, ", "), quoteLiteral(path))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	return nil
}

// typedAmount returns the stage's typed amount columns (amount_v: the
// unscaled integer, amount_frac: the scale, amount_present: not NULL) for a
// Parquet amount column that is DECIMAL of width at most 18 or an integer of
// at most 64 bits, so checked.sql converts it to minor units without
// going through text. Exact: a DECIMAL(w,s) times 10^s is an integer, and a
// value outside BIGINT becomes NULL (TRY_CAST) and is reported. Other types
// (wider DECIMAL, HUGEINT, VARCHAR) take the text path.
func typedAmount(col string, t *sql.ColumnType) (string, bool) {
	tn := strings.ToUpper(t.DatabaseTypeName())
	scale := int64(-1)
	switch {
	case strings.HasPrefix(tn, "DECIMAL"):
		// the driver names it DECIMAL(w,s) (DecimalSize is not filled in)
		var prec int64
		if _, err := fmt.Sscanf(tn, "DECIMAL(%d,%d)", &prec, &scale); err != nil || prec > 18 || scale < 0 || scale > prec {
			return "", false
		}
	case tn == "TINYINT" || tn == "SMALLINT" || tn == "INTEGER" || tn == "BIGINT" ||
		tn == "UTINYINT" || tn == "USMALLINT" || tn == "UINTEGER":
		scale = 0
	default:
		return "", false
	}
	unscaled := col
	if scale > 0 {
		unscaled = fmt.Sprintf("%s * 1%s", col, strings.Repeat("0", int(scale)))
	}
	return fmt.Sprintf("TRY_CAST(%s AS BIGINT) AS amount_v, %d AS amount_frac, %s IS NOT NULL AS amount_present",
		unscaled, scale, col), true
}

// stageRoles are the columns of every src_<n> view (roleColumns) and stage_<n> table, in order.
var stageRoles = []string{roleID, roleAmount, roleCurrency, roleStatus, roleExpectedStatus,
	roleProviderID, roleType, roleDate, roleReason}

// quoteIdent quotes a column name as a DuckDB identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes a string as a DuckDB string literal.
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

var sciNotation = regexp.MustCompile(`^[+-]?[0-9]*\.?[0-9]+[eE][+-]?[0-9]+$`)

// sourceXLSX appends the sheet's lines to the table stage_<n> (stageXLSX)
// and makes src_<n> a view over it.
func sourceXLSX(ctx context.Context, conn *sql.Conn, s *source) error {
	table := fmt.Sprintf("stage_%d", s.n)
	if err := createStage(ctx, conn, table); err != nil {
		return err
	}
	hm, sheet, err := stageXLSX(ctx, conn, s.kind, s.path, s.sheet, table)
	if err != nil {
		return err
	}
	s.hm, s.sheet = hm, sheet
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT *, %s FROM %s`, s.n, textAmount, table)); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return nil
}

// stageXLSX streams a sheet with excelize (raw cell values: the decimal text
// Excel stored, never a float) into table through the DuckDB Appender.
// The header is the first non-empty row; row numbers are the sheet's.
func stageXLSX(ctx context.Context, conn *sql.Conn, kind fileKind, path, sheet, table string) (headerMap, string, error) {
	f, err := excelize.OpenFile(path)
	if err != nil {
		return headerMap{}, sheet, fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if sheet == "" {
		if len(sheets) == 0 {
			return headerMap{}, sheet, fmt.Errorf("%w: %s has no sheets", paybatch.ErrUnusableFile, path)
		}
		sheet = sheets[0]
	} else if idx, _ := f.GetSheetIndex(sheet); idx < 0 {
		return headerMap{}, sheet, fmt.Errorf("%w: %s has no sheet %q (sheets: %s)", paybatch.ErrUnusableFile, path, sheet, quoteList(sheets))
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		return headerMap{}, sheet, fmt.Errorf("%w: %s sheet %q: %v", paybatch.ErrUnusableFile, path, sheet, err)
	}
	defer rows.Close()

	var hm headerMap
	haveHeader := false
	rowNo := 0
	err = conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", table)
		if err != nil {
			return err
		}
		colIdx := map[string]int{}
		for i, c := range stageRoles {
			colIdx[c] = i
		}
		vals := make([]driver.Value, 10)
		for rows.Next() {
			rowNo++
			if rowNo%4096 == 0 && ctx.Err() != nil {
				app.Close()
				return ctx.Err()
			}
			cells, err := rows.Columns(excelize.Options{RawCellValue: true})
			if err != nil {
				app.Close()
				return fmt.Errorf("%w: %s sheet %q row %d: %v", paybatch.ErrUnusableFile, path, sheet, rowNo, err)
			}
			if !haveHeader {
				if allBlank(cells) {
					continue
				}
				if hm, err = mapHeader(kind, path, sheet, cells); err != nil {
					app.Close()
					return err
				}
				haveHeader = true
				continue
			}
			if allBlank(cells) {
				continue
			}
			clear(vals)
			for i, role := range hm.roles {
				if role == "" || i >= len(cells) {
					continue
				}
				v := cells[i]
				if role == roleAmount && sciNotation.MatchString(strings.TrimSpace(v)) {
					if d, err := decimal.NewFromString(strings.TrimSpace(v)); err == nil {
						v = d.String() // exact: 1.5E-3 → 0.0015
					}
				}
				vals[colIdx[role]] = v
			}
			vals[9] = int32(rowNo)
			if err := app.AppendRow(vals...); err != nil {
				app.Close()
				return fmt.Errorf("%s sheet %q row %d: %w", path, sheet, rowNo, err)
			}
		}
		if err := rows.Error(); err != nil {
			app.Close()
			return fmt.Errorf("%w: %s sheet %q: %v", paybatch.ErrUnusableFile, path, sheet, err)
		}
		return app.Close()
	})
	if err != nil {
		return headerMap{}, sheet, err
	}
	if !haveHeader {
		return headerMap{}, sheet, fmt.Errorf("%w: %s sheet %q is empty (no header row)", paybatch.ErrUnusableFile, path, sheet)
	}
	return hm, sheet, nil
}

func allBlank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// LoadJournal reads the pipeline's journal (a DuckDB file with tables
// journal and, optionally, rejects). The file is ATTACHed READ_ONLY and
// DETACHed afterwards, so it is never modified. Its path cannot be a
// parameter of ATTACH; it is passed as a string literal with single quotes
// doubled.
func (r *Reconciler) LoadJournal(ctx context.Context, path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran, r.built = false, false
	if strings.ContainsRune(path, 0) {
		return fmt.Errorf("%w: journal path contains a NUL byte", paybatch.ErrUnusableFile)
	}
	if err := checkDuckDBFile(path); err != nil {
		return err
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH `+quoteLiteral(path)+` AS journal_db (READ_ONLY)`); err != nil {
		return fmt.Errorf("%w: journal %s (is a run still writing it?): %v", paybatch.ErrUnusableFile, path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH journal_db`)

	tables, err := queryStrings(ctx, conn,
		`SELECT table_name FROM duckdb_tables() WHERE database_name = 'journal_db' AND schema_name = 'main'`)
	if err != nil {
		return fmt.Errorf("reconcile: journal %s: %w", path, err)
	}
	has := map[string]bool{}
	for _, t := range tables {
		has[t] = true
	}
	if !has["journal"] {
		return fmt.Errorf("%w: %s is not a paybatch journal (no table journal)", paybatch.ErrUnusableFile, path)
	}
	if _, err := conn.ExecContext(ctx, query("journal_lines")); err != nil {
		return fmt.Errorf("%w: journal %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP VIEW IF EXISTS journal_lines`)

	rows, err := conn.QueryContext(ctx, query("journal_problems"))
	if err != nil {
		return fmt.Errorf("reconcile: journal %s: %w", path, err)
	}
	ie := &InputError{File: path}
	for rows.Next() {
		var key, state, outcome, reason string
		if err := rows.Scan(&key, &state, &outcome, &reason); err != nil {
			rows.Close()
			return fmt.Errorf("reconcile: journal %s: %w", path, err)
		}
		ie.Problems = append(ie.Problems, &paybatch.RowError{
			Source: paybatch.Source{File: path}, Column: "key", Value: key,
			Err: fmt.Errorf("%w: %s (state %q, outcome %q)", paybatch.ErrBadField, reason, state, outcome)})
	}
	rows.Close()
	if len(ie.Problems) > 0 {
		return ie
	}
	codes, err := queryStrings(ctx, conn, query("journal_currencies"))
	if err != nil {
		return fmt.Errorf("reconcile: journal %s: %w", path, err)
	}
	if unknown := unknownCurrencies(codes); len(unknown) > 0 {
		return fmt.Errorf("%w: journal %s: unknown currency code(s) %s", paybatch.ErrBadCurrency, path, quoteList(unknown))
	}
	r.loads++
	r.journals = append(r.journals, r.loads)
	if _, err := conn.ExecContext(ctx, query("journal_to_provider"), sql.Named("load_no", r.loads)); err != nil {
		return fmt.Errorf("reconcile: journal %s: %w", path, err)
	}
	if has["rejects"] {
		if _, err := conn.ExecContext(ctx, query("rejects_to_provider"), sql.Named("load_no", r.loads)); err != nil {
			return fmt.Errorf("reconcile: journal %s rejects: %w", path, err)
		}
	}
	return nil
}

// checkDuckDBFile refuses a journal that is not a DuckDB database file
// (its header carries the magic "DUCK" at byte 8).
func checkDuckDBFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: journal: %v", paybatch.ErrUnusableFile, err)
	}
	defer f.Close()
	head := make([]byte, 12)
	if _, err := io.ReadFull(f, head); err != nil || string(head[8:12]) != "DUCK" {
		return fmt.Errorf("%w: journal %s is not a DuckDB database file (give the pipeline's journal, or use --results for a results file)",
			paybatch.ErrUnusableFile, path)
	}
	return nil
}
