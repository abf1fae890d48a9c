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

// LoadLedger loads the merchant's ledger export (CSV, XLSX or Parquet; sheet
// picks the XLSX sheet, "" = the first). It needs merchant_transaction_id,
// amount and currency columns; type, date and expected_status are optional.
// Every amount is converted exactly to minor units or the whole file is
// refused with an *InputError naming row, column and value.
func (r *Reconciler) LoadLedger(ctx context.Context, path, sheet string) error {
	return r.loadFile(ctx, kindLedger, path, sheet)
}

// LoadResults loads a provider results file (CSV, XLSX or Parquet) with
// merchant_transaction_id, amount, currency and status columns (optional
// transaction_id, type, date, reason). Statuses of both providers are
// understood (sql/vocab.sql); any other status refuses the file.
func (r *Reconciler) LoadResults(ctx context.Context, path, sheet string) error {
	return r.loadFile(ctx, kindResults, path, sheet)
}

func (r *Reconciler) loadFile(ctx context.Context, kind fileKind, path, sheet string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = false
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, query("stage_reset")); err != nil {
		return fmt.Errorf("reconcile: reset stage: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), query("stage_reset")) // free the text copy

	var hm headerMap
	firstRow := 1
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".csv", ".txt", ".tsv":
		hm, err = stageCSV(ctx, conn, kind, path)
		firstRow = 2
	case ".parquet", ".pq":
		hm, err = stageParquet(ctx, conn, kind, path)
	case ".xlsx", ".xlsm":
		hm, sheet, err = stageXLSX(ctx, conn, kind, path, sheet)
	default:
		err = fmt.Errorf("%w: %s: unsupported file type %q (use .csv, .xlsx or .parquet)", paybatch.ErrUnusableFile, path, ext)
	}
	if err != nil {
		return err
	}
	if firstRow == 2 || strings.HasPrefix(strings.ToLower(filepath.Ext(path)), ".xls") {
		// CSV and XLSX were copied into the stage table: check them from there.
		for _, name := range []string{"stage_complete", "stage_src_table"} {
			if _, err := conn.ExecContext(ctx, query(name)); err != nil {
				return fmt.Errorf("reconcile: %s: %w", path, err)
			}
		}
	}
	r.loads++
	if err := setStageVars(ctx, conn, kind, firstRow, r.loads); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `INSERT OR REPLACE INTO loads VALUES (?, ?, ?)`, r.loads, path, sheet); err != nil {
		return fmt.Errorf("reconcile: %s: %w", path, err)
	}
	// One pass: the INSERT converts and checks every row; a row with a
	// problem fails it whole (a NOT NULL constraint, see
	// sql/stage_to_ledger.sql), and only then is the file scanned again to
	// name the problems. The currencies table already holds every ISO 4217
	// code (Open), so no pass is needed to collect the file's currencies.
	target := "stage_to_ledger"
	if kind == kindResults {
		target = "stage_to_provider"
	}
	// ledger and provider rows are ordered by seq, never by insertion, so
	// the insert may run unordered (faster); the stage itself was loaded in
	// order because its rowid gives CSV row numbers. Loads are serialised
	// by r.mu, and nothing else depends on insertion order.
	if _, err := conn.ExecContext(ctx, `SET preserve_insertion_order = false`); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	res, err := conn.ExecContext(ctx, query(target))
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `SET preserve_insertion_order = true`); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("reconcile: %s: %w", path, ctx.Err())
		}
		// the failed INSERT loaded nothing (its transaction rolled back)
		if perr := stageProblems(ctx, conn, hm, path, sheet); perr != nil {
			return perr
		}
		return fmt.Errorf("reconcile: %s: %w", path, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("reconcile: %s: %w", path, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s: the %s has a header but no rows", paybatch.ErrUnusableFile, path, kind)
	}
	if kind == kindLedger {
		r.ledgers += int(n)
	}
	return nil
}

var sentinelOf = map[string]error{
	roleID: paybatch.ErrMissingField, roleAmount: paybatch.ErrBadAmount, roleCurrency: paybatch.ErrBadCurrency,
	roleStatus: paybatch.ErrBadField, roleExpectedStatus: paybatch.ErrBadField,
}

func stageProblems(ctx context.Context, conn *sql.Conn, hm headerMap, path, sheet string) error {
	rows, err := conn.QueryContext(ctx, query("stage_problems"))
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

// stageCSV reads the header in Go (to match it and pick the delimiter) and
// lets DuckDB's CSV reader load the body as text.
func stageCSV(ctx context.Context, conn *sql.Conn, kind fileKind, path string) (headerMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return headerMap{}, fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	f.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return headerMap{}, fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	line = strings.TrimPrefix(line, "\ufeff")
	if strings.TrimSpace(line) == "" {
		return headerMap{}, fmt.Errorf("%w: %s is empty (no header row)", paybatch.ErrUnusableFile, path)
	}
	delim := sniffDelim(line)
	cr := csv.NewReader(strings.NewReader(line))
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if err != nil {
		return headerMap{}, fmt.Errorf("%w: %s row 1: header: %v", paybatch.ErrUnusableFile, path, err)
	}
	hm, err := mapHeader(kind, path, "", header)
	if err != nil {
		return headerMap{}, err
	}
	if _, err := conn.ExecContext(ctx, query("stage_csv"),
		sql.Named("path", path), sql.Named("delim", string(delim)), sql.Named("names", hm.names())); err != nil {
		return headerMap{}, fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	return hm, nil
}

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

// stageParquet maps the Parquet column names and loads the mapped columns as
// text. Float amounts are refused: their text is not the amount that was meant.
func stageParquet(ctx context.Context, conn *sql.Conn, kind fileKind, path string) (headerMap, error) {
	rows, err := conn.QueryContext(ctx, `SELECT * FROM read_parquet(?) LIMIT 0`, path)
	if err != nil {
		return headerMap{}, fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	types, err := rows.ColumnTypes()
	rows.Close()
	if err != nil {
		return headerMap{}, fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	header := make([]string, len(types))
	for i, t := range types {
		header[i] = t.Name()
	}
	hm, err := mapHeader(kind, path, "", header)
	if err != nil {
		return headerMap{}, err
	}
	byRole := map[string]string{}
	typed := "NULL::BIGINT AS amount_v, NULL::INTEGER AS amount_frac, NULL::BOOLEAN AS amount_present"
	for i, role := range hm.roles {
		if role == "" {
			continue
		}
		tn := strings.ToUpper(types[i].DatabaseTypeName())
		if role == roleAmount && (strings.Contains(tn, "FLOAT") || strings.Contains(tn, "DOUBLE") || tn == "REAL") {
			return headerMap{}, &paybatch.RowError{Source: paybatch.Source{File: path},
				Column: header[i], Err: fmt.Errorf("%w: the amount column is %s, a binary float that cannot hold amounts exactly; export it as DECIMAL, integer or text",
					paybatch.ErrBadAmount, tn)}
		}
		byRole[role] = fmt.Sprintf("CAST(%s AS VARCHAR) AS %s", quoteIdent(header[i]), role)
		if role == roleAmount {
			if v, ok := typedAmount(quoteIdent(header[i]), types[i]); ok {
				typed = v
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
	q := strings.Replace(query("stage_parquet"), "/*columns*/", strings.Join(cols, ", "), 1)
	q = strings.Replace(q, "/*path*/", quoteLiteral(path), 1)
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return headerMap{}, fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	return hm, nil
}

// typedAmount returns the stage's typed amount columns (amount_v: the
// unscaled integer, amount_frac: the scale, amount_present: not NULL) for a
// Parquet amount column that is DECIMAL of width at most 18 or an integer of
// at most 64 bits, so stage_checked.sql converts it to minor units without
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

// stageRoles are the stage's columns, in order (sql/stage_reset.sql).
var stageRoles = []string{roleID, roleAmount, roleCurrency, roleStatus, roleExpectedStatus,
	roleProviderID, roleType, roleDate, roleReason}

// quoteIdent quotes a column name as a DuckDB identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes a string as a DuckDB string literal.
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

var sciNotation = regexp.MustCompile(`^[+-]?[0-9]*\.?[0-9]+[eE][+-]?[0-9]+$`)

// stageXLSX streams a sheet with excelize (raw cell values: the decimal text
// Excel stored, never a float) into the stage through the DuckDB Appender.
// The header is the first non-empty row; row numbers are the sheet's.
func stageXLSX(ctx context.Context, conn *sql.Conn, kind fileKind, path, sheet string) (headerMap, string, error) {
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
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "stage")
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
	r.ran = false
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
	unknown, err := r.addCurrencies(ctx, conn, codes)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: journal %s: unknown currency code(s) %s", paybatch.ErrBadCurrency, path, quoteList(unknown))
	}
	r.loads++
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

// setStageVars tells sql/stage_checked.sql what the stage holds. DuckDB
// variables belong to the connection, as does the load.
func setStageVars(ctx context.Context, conn *sql.Conn, kind fileKind, firstRow int, loadNo int) error {
	for _, v := range []struct {
		name string
		val  any
	}{{"stage_kind", string(kind)}, {"stage_first_row", firstRow}, {"stage_load_no", loadNo}} {
		// the name is one of ours; the value is a parameter
		if _, err := conn.ExecContext(ctx, "SET VARIABLE "+v.name+" = ?", v.val); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
	}
	return nil
}
