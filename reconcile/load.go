package reconcile

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/readers"
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
// to), and checked_<n> (sql/checked.sql, created when first read:
// ensureChecked), the same lines checked and converted; packed_<n>
// (sql/packed.sql) is Run's fast road over them. A CSV DuckDB reads gets
// src_<n> and packed_<n> only when something reads them by name
// (ensurePacked): Run's fast pass reads the file through packed.sql's query
// written into its own (packedFrom).
type source struct {
	n           int
	kind        fileKind
	path, sheet string
	format      string // "csv", "parquet" or "xlsx"
	hm          headerMap
	csvRead     string // CSV: the read_csv(...) call of src_<n>
	width       int    // CSV: the header's number of fields
	copied      bool   // CSV: src_<n> reads the text copy stage_<n>
	staged      bool   // CSV: read in Go into stage_<n> (stageCSV), not by DuckDB
	delim       rune   // CSV: the delimiter
	inserted    bool   // the lines are in ledger or provider
	checked     bool   // lines_<n> and checked_<n> exist (ensureChecked)
	srcView     bool   // src_<n> exists (ensureSrc)
	packedView  bool   // packed_<n> exists (ensurePacked)
	// CSV: recordsAreLines has answered (numberByLines)
	linesScanned bool
	// CSV: recordsAreLines started when the file was loaded
	// (startLineScan), or nil
	lineScan *lineScan
	// acceptFormulas: an XLSX formula cell is read at its computed value
	acceptFormulas bool
}

func (s *source) sql(name string) string {
	q := query(name)
	if name == "checked" || name == "packed" {
		q = s.checkedSQL(q)
	}
	q = strings.ReplaceAll(q, "/*n*/", strconv.Itoa(s.n))
	q = strings.ReplaceAll(q, "/*spaces*/", spacesSQL())
	return strings.ReplaceAll(q, "/*kind*/", quoteLiteral(string(s.kind)))
}

// ensureChecked creates lines_<n> and checked_<n> (sql/checked.sql) the
// first time something reads them: Run's pass off the fast road, the
// inserts for Rows and --db, the rows pass, problems. Loading creates
// neither: binding the two views costs ~14 ms of CPU for a ledger and a
// results file, which a reconcile on the fast road never reads
// (BENCHMARKS.md, #19 session 8).
func (s *source) ensureChecked(ctx context.Context, conn *sql.Conn) error {
	// checked_<n> reads src_<n> by name, which the rows pass drops after
	// it (rowsPass)
	if err := s.ensureSrc(ctx, conn); err != nil {
		return err
	}
	if s.checked {
		return nil
	}
	if _, err := conn.ExecContext(ctx, s.sql("checked")); err != nil {
		return fmt.Errorf("reconcile: %s: sql/checked.sql: %w", s.path, err)
	}
	s.checked = true
	return nil
}

// ensureSrc creates src_<n> of a CSV DuckDB reads (csvView) the first
// time something reads it by name; every other source has it from its load.
// Binding a view over read_csv runs DuckDB's sniffer over the file's first
// buffer (~2-3 ms of CPU for a 1M-line CSV, BENCHMARKS.md #19 session 9),
// and creating a view binds it: a reconcile on the fast road never reads
// src_<n> or packed_<n> by name.
func (s *source) ensureSrc(ctx context.Context, conn *sql.Conn) error {
	if s.srcView {
		return nil
	}
	if _, err := conn.ExecContext(ctx, csvView(s)); err != nil {
		return fmt.Errorf("reconcile: %s: %w", s.path, err)
	}
	s.srcView = true
	return nil
}

// ensurePacked creates packed_<n> (sql/packed.sql, and src_<n> under it)
// the first time something reads it by name: Run's rows pass. Run's fast
// pass writes packed.sql's query into its own (packedFrom) and needs
// neither view.
func (s *source) ensurePacked(ctx context.Context, conn *sql.Conn) error {
	if s.packedView {
		return nil
	}
	if err := s.ensureSrc(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, s.sql("packed")); err != nil {
		return fmt.Errorf("reconcile: %s: sql/packed.sql: %w", s.path, err)
	}
	s.packedView = true
	return nil
}

// packedFrom is what Run's fast pass reads the lines of s from: packed.sql's
// query as a subquery named packed_<n>, over src_<n> when it exists and
// otherwise straight over the read_csv call, so that the pass's own bind
// is the only one that sniffs the file (ensureSrc).
func (s *source) packedFrom() string {
	q := s.sql("packed")
	head := fmt.Sprintf("CREATE OR REPLACE VIEW packed_%d AS", s.n)
	i := strings.Index(q, head)
	if i < 0 {
		panic("reconcile: sql/packed.sql does not create packed_<n>")
	}
	q = strings.TrimSuffix(strings.TrimSpace(q[i+len(head):]), ";")
	if !s.srcView {
		from := fmt.Sprintf("FROM src_%d\n", s.n)
		if strings.Count(q, from) != 1 {
			panic("reconcile: sql/packed.sql reads src_<n> other than once")
		}
		q = strings.Replace(q, from, fmt.Sprintf("FROM %s AS src_%d\n", s.csvRead, s.n), 1)
	}
	return fmt.Sprintf("(%s) AS packed_%d", q, s.n)
}

// checkedSQL is sql/checked.sql (or sql/packed.sql) for s: a ledger without an expected-status
// column has a NULL status on every line, so each block between /*status{*/
// and /*}status*/ (the status columns and their lookups) is replaced by
// what follows its /*else*/ — what the block gives for a NULL status: no
// class and no word, and no joins (two hash-join probes per line); with a
// status column, by what precedes it.
func (s *source) checkedSQL(q string) string {
	_, has := s.hm.original[roleExpectedStatus]
	has = has || s.kind != kindLedger
	for {
		i := strings.Index(q, "/*status{*/")
		if i < 0 {
			return q
		}
		j := strings.Index(q[i:], "/*}status*/")
		e := strings.Index(q[i:], "/*else*/")
		if j < 0 || e < 0 || e > j {
			panic("reconcile: sql/checked.sql: a /*status{*/ block without its /*else*/ or /*}status*/")
		}
		j, e = i+j, i+e
		with, without := q[i+len("/*status{*/"):e], q[e+len("/*else*/"):j]
		keep := without
		if has {
			keep = with
		}
		q = q[:i] + keep + q[j+len("/*}status*/"):]
	}
}

// spacesSQL is readers.Spaces() as a DuckDB string literal holding the
// characters themselves (the tab, the line breaks and the Unicode spaces;
// none is a quote). A literal, not chr(9) || chr(10) || … (25 calls): DuckDB
// folds that expression again in every optimizer pass wherever it appears,
// which made binding a checked_<n> view cost twice as much — ~30 ms of
// every reconcile's fixed cost (BENCHMARKS.md, #19). The literal holds line
// breaks: the placeholder must never stand in a -- comment of the SQL.
func spacesSQL() string {
	return "'" + readers.Spaces() + "'"
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

	s := &source{n: r.loads + 1, kind: kind, path: path, sheet: sheet, acceptFormulas: r.opts.AcceptFormulaValues}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".csv", ".txt", ".tsv":
		s.format = "csv"
		if r.opts.Rows {
			// Run numbers the records of a CSV DuckDB reads: the scan
			// that says whether they are its lines runs beside the load
			// (startLineScan); it is stopped when this load does not
			// leave such a CSV
			startLineScan(s)
			defer func() {
				if err != nil || !s.needsLineScan() {
					s.lineScan.cancel()
					s.lineScan = nil
				}
			}()
		}
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
		err = withFallback(ctx, conn, s, func() error { return checkSource(ctx, conn, s) })
	}
	if err == nil {
		// a load number is never given twice (r.loads only grows; a failed
		// load deletes its row, dropSource): a plain INSERT, 0.6 against
		// 1.6 ms of CPU for INSERT OR REPLACE's conflict check
		_, err = conn.ExecContext(ctx, `INSERT INTO loads VALUES (?, ?, ?)`, s.n, path, s.sheet)
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

// checkSource reads the first line of s.
func checkSource(ctx context.Context, conn *sql.Conn, s *source) error {
	if s.format == "csv" {
		return nil // firstRecord found a line
	}
	return checkHasLines(ctx, conn, s)
}

// checkHasLines refuses a file without a single non-blank line. Only the
// start of the file is read (the first line that is not blank ends it):
// first the file's own columns, for the first line with any of id, amount,
// currency or status present — if one of them holds more than spaces the
// file has a line (reading it through checked_<n>, lookups and all, took a
// row group per thread: 0.1–0.3 CPU-s per 1M-line Parquet file) — and only
// when there is no such line, or it is all spaces, checked_<n>'s own rule.
func checkHasLines(ctx context.Context, conn *sql.Conn, s *source) error {
	status := roleExpectedStatus
	if s.kind == kindResults {
		status = roleStatus
	}
	var id, amount, currency, st sql.NullString
	var present sql.NullBool
	first := fmt.Sprintf(`SELECT merchant_transaction_id, amount, amount_present, currency, %[2]s FROM src_%[1]d
		WHERE coalesce(merchant_transaction_id, amount, currency, %[2]s) IS NOT NULL OR amount_present LIMIT 1`, s.n, status)
	switch err := conn.QueryRowContext(ctx, first).Scan(&id, &amount, &present, &currency, &st); {
	case errors.Is(err, sql.ErrNoRows):
		// every role of every line is NULL: blank (checked.sql's rule)
		return fmt.Errorf("%w: %s: the %s has a header but no rows", paybatch.ErrUnusableFile, s.path, s.kind)
	case err != nil:
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, s.path, err)
	case present.Bool || readers.TrimID(id.String) != "" || readers.TrimID(amount.String) != "" ||
		readers.TrimID(currency.String) != "" || readers.TrimID(st.String) != "":
		// checked.sql trims these of at most the same spaces: not blank
		return nil
	}
	var n int
	if err := s.ensureChecked(ctx, conn); err != nil {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, s.path, err)
	}
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
	for _, v := range []string{"packed", "checked", "lines"} {
		conn.ExecContext(ctx, fmt.Sprintf(`DROP VIEW IF EXISTS %s_%d`, v, s.n))
	}
	conn.ExecContext(ctx, fmt.Sprintf(`DROP VIEW IF EXISTS src_%d`, s.n))
	conn.ExecContext(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS stage_%d`, s.n))
	conn.ExecContext(ctx, `DELETE FROM loads WHERE load_no = ?`, s.n)
}

// insertLines moves the lines of s into ledger or provider (for Rows, the
// exports and --db). A CSV is first copied as text into stage_<n>, whose row
// order gives the row numbers read_csv cannot: the records' places, which
// are their lines once numberByLines has read in Go a CSV whose records are
// not one line each (csvlines.go). A line with a problem fails
// the insert whole, and the problems are named in an *InputError.
func insertLines(ctx context.Context, conn *sql.Conn, s *source) error {
	if s.inserted {
		return nil
	}
	if err := s.numberByLines(ctx, conn); err != nil {
		return err
	}
	if s.duckCSV() && !s.copied {
		for _, q := range []string{
			fmt.Sprintf(`CREATE OR REPLACE TABLE stage_%d AS SELECT * EXCLUDE (src_row) FROM %s`, s.n, s.csvRead),
			// the header is row 1; records are in file order (preserve_insertion_order)
			fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT *, (rowid + 2)::INTEGER AS src_row FROM stage_%d`, s.n, s.n),
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, s.path, err)
			}
		}
		s.copied, s.srcView = true, true
	}
	if err := s.ensureChecked(ctx, conn); err != nil {
		return err
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
	if err := s.ensureChecked(ctx, conn); err != nil {
		return err
	}
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

// sourceCSV reads the header and the first record through readers (the one
// input layer: encodings, delimiter, line endings, field counts) and, for a
// plain UTF-8 CSV, makes src_<n> a view over DuckDB's CSV reader, every
// column as text (all_varchar: DuckDB must never guess a type, it would read
// amounts as DOUBLE). DuckDB reads strictly: every record must have the
// header's number of fields, and the number of columns it finds must be
// the header's. Whatever DuckDB refuses, and any file that is not plain, is
// read in Go by readers instead (stageCSV), which reads it or refuses it
// naming the line: readers is the authority, DuckDB only the fast road
// (differential_test.go proves both give the same lines). Row numbers are
// not known to read_csv; insertLines makes a text copy for them when the
// lines are needed one by one.
func sourceCSV(ctx context.Context, conn *sql.Conn, s *source) error {
	path := s.path
	f, size, err := openInput(path)
	if err != nil {
		return err
	}
	defer f.Close()
	t, err := readers.OpenTable(f, size, path, readers.TableOptions{})
	if err != nil {
		return err
	}
	defer t.Close()
	header := t.Header()
	s.delim, s.width = t.Delimiter(), len(header)
	if s.hm, err = mapHeader(s.kind, path, "", header); err != nil {
		return err
	}
	if err := firstRecord(t, s); err != nil {
		return err
	}
	if !t.PlainCSV() {
		return stageCSV(ctx, conn, s)
	}
	quoted := s.quotedNames()
	// A view cannot hold bound parameters: the path and the column names are
	// string literals (single quotes doubled); the delimiter is one of ours.
	// The dialect is given, so DuckDB's sniffer, which runs each time a
	// query binds the read_csv call (a view over it, or Run's pass), is held
	// to 2,048 lines (its default 20,480 took ~0.1 s per file per query).
	// Turning it off (auto_detect = false with typed columns) was tried: the
	// read then needed more memory (a 10M-line CSV ran out of a 1GB limit)
	// and was slower (BENCHMARKS.md). Why: without the sniffer's buffer
	// DuckDB estimates every CSV at 42 rows (CSVMultiFileInfo::GetCardinality),
	// so the optimizer builds each lookup join's hash table over the file's
	// lines instead of over currency_lookup's 531 (EXPLAIN shows it, #19
	// session 9). The sniffer's bind is paid once per statement instead:
	// views over the call are created only when read by name (ensureSrc).
	// Its buffers are 4 MB instead of the default 32 MB: each bind and each
	// reading thread touches a buffer, fresh memory is slow to fault in, and
	// the buffers count against DuckDB's memory limit. null_padding stays
	// off: a record that stops short is refused, never padded. The
	// sniffer's only type candidate is VARCHAR (auto_type_candidates):
	// all_varchar alone still let it try every type on every column of the
	// sample first (a '2026-11-20' as each date format), 6 ms of every bind
	// of a 1M-line ledger instead of 1.5 (BENCHMARKS.md, #19 session 7).
	s.csvRead = s.csvReadWith(csvBuffer)
	if !duckReadsCSV(ctx, conn, s, quoted) {
		return stageCSV(ctx, conn, s)
	}
	// src_<n> is created when first read by name (ensureSrc)
	return nil
}

// csvBuffer is the buffer of DuckDB's CSV reader for src_<n> (see
// loadCSV); the rows pass's copies take larger ones (copyBuffer).
const csvBuffer = 4 << 20

// quotedNames are the CSV header's names as string literals (a view cannot
// hold bound parameters).
func (s *source) quotedNames() []string {
	names := s.hm.names()
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = quoteLiteral(n)
	}
	return quoted
}

// csvReadWith is the subquery src_<n> reads a plain CSV through (the
// roles named, src_row NULL), with read_csv's buffers of buffer bytes.
func (s *source) csvReadWith(buffer int) string {
	return fmt.Sprintf(`(SELECT %s, NULL::INTEGER AS src_row FROM %s)`, roleColumns(s.hm, false), s.readCSV(s.quotedNames(), buffer))
}

// readCSV is the read_csv(...) call of a plain CSV, its columns named.
// hive_partitioning is off: DuckDB otherwise turns a "key=value" directory
// in the path (…/rows=1000000/ledger.csv) into a column of every line.
func (s *source) readCSV(names []string, buffer int) string {
	return fmt.Sprintf(`read_csv(%s, header = false, skip = 1, all_varchar = true, auto_type_candidates = ['VARCHAR'], sample_size = 2048, buffer_size = %d, delim = %s, quote = '"', escape = '"', names = [%s], null_padding = false, hive_partitioning = false)`,
		quoteLiteral(s.path), buffer, quoteLiteral(string(s.delim)), strings.Join(names, ", "))
}

// duckReadsCSV reports whether DuckDB's sniffer accepts the file and finds
// the header's number of columns. With names given, a file whose records
// all have a field more than the header (an unquoted "1,234.00" in every
// line) is otherwise read with an extra column, and the amount cut short.
// The query is prepared, not run: preparing binds it (the sniffer runs
// there), and running it, even with LIMIT 0, started the scan — 3.7 against
// 2.0 ms of CPU for a 1M-line CSV (BENCHMARKS.md, #19 session 8).
func duckReadsCSV(ctx context.Context, conn *sql.Conn, s *source, names []string) bool {
	n := -1
	err := conn.Raw(func(dc any) error {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("reconcile: the DuckDB driver cannot prepare")
		}
		st, err := pc.PrepareContext(ctx, `SELECT * FROM `+s.readCSV(names, csvBuffer))
		if err != nil {
			return err
		}
		defer st.Close()
		ds, ok := st.(*duckdb.Stmt)
		if !ok {
			return errors.New("reconcile: not a DuckDB statement")
		}
		n, err = ds.ColumnCount()
		return err
	})
	return err == nil && n == s.width
}

// openInput opens an input file for readers.
func openInput(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s is not a regular file", paybatch.ErrUnusableFile, path)
	}
	return f, st.Size(), nil
}

// duckCSV reports whether s is a CSV read by DuckDB's CSV reader (not yet
// read in Go by stageCSV).
func (s *source) duckCSV() bool { return s.format == "csv" && !s.staged }

// csvView (re)creates src_<n> over the CSV reader.
func csvView(s *source) string {
	return fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT * FROM %s`, s.n, s.csvRead)
}

// withFallback runs read over s. When DuckDB's CSV reader refuses a CSV
// (anything but a problem with its values, an *InputError), the file is
// read in Go instead (stageCSV), which reads it or names what is wrong, and
// read runs once more.
func withFallback(ctx context.Context, conn *sql.Conn, s *source, read func() error) error {
	err := read()
	if err == nil || !s.duckCSV() || s.inserted || ctx.Err() != nil {
		return err
	}
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	if serr := stageCSV(ctx, conn, s); serr != nil {
		return serr
	}
	return read()
}

// firstRecord reads on from the header to the first record with an id,
// amount, currency or status, so that a file without one is refused now
// (DuckDB, asked for one line, parses most of a large file first), and a
// record readers refuse there (a field too many or too few) is refused
// before DuckDB could read it differently.
func firstRecord(t *readers.Table, s *source) error {
	var roles []int
	for i, role := range s.hm.roles {
		switch role {
		case roleID, roleAmount, roleCurrency, roleStatus, roleExpectedStatus:
			roles = append(roles, i)
		}
	}
	for {
		_, rec, err := t.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s: the %s has a header but no rows", paybatch.ErrUnusableFile, s.path, s.kind)
		}
		if err != nil {
			return inputError(s, err)
		}
		for _, i := range roles {
			if i < len(rec) && strings.TrimSpace(rec[i].Text) != "" {
				return nil
			}
		}
	}
}

// inputError words an error of readers for reconcile: a record with the
// wrong number of fields names the fix without --decimal-comma, which
// ledgers do not have.
func inputError(s *source, err error) error {
	var fe *readers.FieldCountError
	if errors.As(err, &fe) {
		return &paybatch.RowError{Source: paybatch.Source{File: s.path, Row: fe.Line},
			Err: fmt.Errorf("%w: %s", paybatch.ErrUnusableFile, readers.FieldCountReason(fe.Found, fe.Want, fe.Delim, false))}
	}
	return err
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

// sourceParquet maps the Parquet column names and makes src_<n> a view
// over read_parquet: text columns as text, a DECIMAL or integer amount typed
// (typedAmount), row numbers from file_row_number. Float amounts are refused:
// their text is not the amount that was meant.
func sourceParquet(ctx context.Context, conn *sql.Conn, s *source) error {
	path := s.path
	rows, err := conn.QueryContext(ctx, `SELECT * FROM read_parquet(?, hive_partitioning = false) LIMIT 0`, path)
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
	q := fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT %s, (file_row_number + 1)::INTEGER AS src_row FROM read_parquet(%s, file_row_number = true, hive_partitioning = false)`,
		s.n, strings.Join(cols, ", "), quoteLiteral(path))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%w: %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	s.srcView = true
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

// sourceXLSX appends the sheet's lines to the table stage_<n> and makes
// src_<n> a view over it (stageTable), the sheet's header mapped first.
func sourceXLSX(ctx context.Context, conn *sql.Conn, s *source) error {
	return stageTable(ctx, conn, s, readers.TableOptions{Sheet: s.sheet, AcceptFormulaValues: s.acceptFormulas}, func(t *readers.Table) error {
		s.sheet = t.Sheet()
		var err error
		if s.hm, err = mapHeader(s.kind, s.path, s.sheet, t.Header()); err != nil {
			if len(t.Sheets()) > 1 {
				return fmt.Errorf("%w; if the %s is on another sheet, name it (sheets: %s)", err, s.kind, quoteList(t.Sheets()))
			}
			return err
		}
		return nil
	})
}

// stageTable reads s's file through readers (opts) into the table
// stage_<n> (appendTable) and makes src_<n> a view over it: an XLSX sheet
// (sourceXLSX) or a CSV read in Go (stageCSV). header, when not nil, is
// called with the table open, before its lines are read.
func stageTable(ctx context.Context, conn *sql.Conn, s *source, opts readers.TableOptions, header func(*readers.Table) error) error {
	table := fmt.Sprintf("stage_%d", s.n)
	if err := createStage(ctx, conn, table); err != nil {
		return err
	}
	f, size, err := openInput(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	t, err := readers.OpenTable(f, size, s.path, opts)
	if err != nil {
		return err
	}
	defer t.Close()
	if header != nil {
		if err := header(t); err != nil {
			return err
		}
	}
	if err := appendTable(ctx, conn, s, t, table); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT *, %s FROM %s`, s.n, textAmount, table)); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	s.srcView = true
	return nil
}

// appendTable appends the rows of t to table through the DuckDB Appender:
// each role's text as readers read it, and the row number the user sees.
// A numeric XLSX amount is written as the exact decimal readers take from
// it (the one rule of validate: Excel's binary double 49.990000000000002
// is 49.99 in a 2-decimal currency); a formula cell in a column reconcile
// reads is refused (unless accepted), naming its computed value.
func appendTable(ctx context.Context, conn *sql.Conn, s *source, t *readers.Table, table string) error {
	colIdx := map[string]int{}
	for i, c := range stageRoles {
		colIdx[c] = i
	}
	curCol := -1
	for i, role := range s.hm.roles {
		if role == roleCurrency {
			curCol = i
		}
	}
	err := conn.Raw(func(dc any) error {
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
			row, cells, err := t.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				app.Close()
				return inputError(s, err)
			}
			clear(vals)
			for i, role := range s.hm.roles {
				if role == "" || i >= len(cells) {
					continue
				}
				c := cells[i]
				src := paybatch.Source{File: s.path, Sheet: s.sheet, Row: row}
				if c.Formula {
					app.Close()
					return &paybatch.RowError{Source: src, Column: s.hm.column(role), Value: c.Text,
						Err: fmt.Errorf("%w: the cell holds a formula (last computed value %q, which may be stale); paste the column as values, or pass --accept-formula-values to use the computed values", paybatch.ErrBadField, c.Text)}
				}
				if c.Text == "" {
					continue // an empty value is NULL, as DuckDB reads it
				}
				if !utf8.ValidString(c.Text) {
					app.Close()
					return &paybatch.RowError{Source: src, Column: s.hm.column(role), Value: strings.ToValidUTF8(c.Text, "?"),
						Err: fmt.Errorf("%w: not UTF-8 text; save the file as UTF-8 (in Excel: CSV UTF-8)", paybatch.ErrUnusableFile)}
				}
				v := c.Text
				if role == roleAmount && c.Number {
					var cur paybatch.Currency
					if curCol >= 0 && curCol < len(cells) {
						cur, _ = paybatch.ParseCurrency(cells[curCol].Text)
					}
					v = readers.NumberText(c.Text, cur)
				}
				vals[colIdx[role]] = v
			}
			vals[len(stageRoles)] = int32(row)
			if err := app.AppendRow(vals...); err != nil {
				app.Close()
				return fmt.Errorf("%w: %s row %d: %v", paybatch.ErrUnusableFile, s.path, row, err)
			}
		}
		return app.Close()
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("reconcile: %s: %w", s.path, ctx.Err())
	}
	return err
}

// LoadJournal reads the pipeline's journal through the views it exports
// for readers (journal_export: one row per key with the latest state,
// pending state changes of a killed run folded in; rejects_export: rows
// refused before sending) — never its tables (package pipeline/journal owns
// them). The file is ATTACHed READ_ONLY and DETACHed afterwards, so it is
// never modified. Its path cannot be a parameter of ATTACH; it is passed as
// a string literal with single quotes doubled.
func (r *Reconciler) LoadJournal(ctx context.Context, path string) error {
	return r.LoadJournalScope(ctx, path, JournalScope{})
}

// JournalScope narrows a journal load to what one run's report covers, so
// that its cost follows the run and not the journal's age. The zero scope
// loads every row.
type JournalScope struct {
	// Files are the run's input files, as the journal names them (the
	// paths the rows were read from). None: every row.
	Files []string
	// Since keeps, of those files' rows, the ones that changed at or after
	// it (the run's start): a path reused night after night does not bring
	// back earlier nights' finished rows. Zero: any time.
	Since time.Time
	// Open, when set, narrows the rows still open that the report covers
	// besides Files' to those of these files: on a journal shared with
	// other jobs and processes (PostgreSQL), their rows in flight are not
	// this run's. Nil: every open row.
	Open []string
}

func (s JournalScope) rowsCond() string {
	if len(s.Files) == 0 {
		return ""
	}
	open := `class = 'pending' OR class IS NULL`
	if s.Open != nil {
		open = `((` + open + `) AND list_contains(` + literalList(s.Open) + `, source_file))`
	}
	cond := `(` + open + ` OR (list_contains(` + literalList(s.Files) + `, source_file)`
	if !s.Since.IsZero() {
		cond += ` AND updated_at >= TIMESTAMP ` + quoteLiteral(s.Since.UTC().Format("2006-01-02 15:04:05.999999"))
	}
	return cond + `)) AND`
}

func (s JournalScope) rejectsCond() string {
	if len(s.Files) == 0 {
		return ""
	}
	return `list_contains(` + literalList(s.Files) + `, source_file) AND`
}

// literalList is a DuckDB VARCHAR list literal.
func literalList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quoteLiteral(s)
	}
	return `[` + strings.Join(q, ", ") + `]::VARCHAR[]`
}

// LoadJournalScope is LoadJournal for the rows scope covers (one run's
// report: its inputs' rows plus every row still open).
func (r *Reconciler) LoadJournalScope(ctx context.Context, path string, scope JournalScope) error {
	if strings.ContainsRune(strings.Join(scope.Files, "")+strings.Join(scope.Open, ""), 0) {
		return fmt.Errorf("%w: journal scope: a file name contains a NUL byte", paybatch.ErrUnusableFile)
	}
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
	return r.loadAttachedJournal(ctx, conn, path, scope)
}

// LoadJournalFrom reads a journal that is not a DuckDB file (a PostgreSQL
// journal): fill must create, in the in-memory database journal_db
// attached on conn, the views journal_export and rejects_export with the
// columns reconcile reads (sql/journal_lines.sql, sql/rejects_to_provider.sql)
// and load their rows; from there the journal is read as LoadJournal
// reads a file, narrowed to scope (LoadJournalScope). name is what
// messages call the journal.
func (r *Reconciler) LoadJournalFrom(ctx context.Context, name string, scope JournalScope, fill func(ctx context.Context, conn *sql.Conn) error) error {
	if strings.ContainsRune(strings.Join(scope.Files, "")+strings.Join(scope.Open, ""), 0) {
		return fmt.Errorf("%w: journal scope: a file name contains a NUL byte", paybatch.ErrUnusableFile)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran, r.built = false, false
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH ':memory:' AS journal_db`); err != nil {
		return fmt.Errorf("reconcile: journal %s: %w", name, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH journal_db`)
	if err := fill(ctx, conn); err != nil {
		return fmt.Errorf("reconcile: journal %s: %w", name, err)
	}
	return r.loadAttachedJournal(ctx, conn, name, scope)
}

// loadAttachedJournal reads the journal attached on conn as journal_db.
func (r *Reconciler) loadAttachedJournal(ctx context.Context, conn *sql.Conn, path string, scope JournalScope) error {
	views, err := queryStrings(ctx, conn,
		`SELECT view_name FROM duckdb_views() WHERE database_name = 'journal_db' AND schema_name = 'main'`)
	if err != nil {
		return fmt.Errorf("reconcile: journal %s: %w", path, err)
	}
	has := map[string]bool{}
	for _, t := range views {
		has[t] = true
	}
	if !has["journal_export"] || !has["rejects_export"] {
		return fmt.Errorf("%w: %s is not a paybatch journal, or one written by an older paybatch (no view journal_export): open it once with this paybatch (paybatch status --journal FILE --poll-deadline 0) to upgrade it",
			paybatch.ErrUnusableFile, path)
	}
	if _, err := conn.ExecContext(ctx, query("journal_lines")); err != nil {
		return fmt.Errorf("%w: journal %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DROP VIEW IF EXISTS journal_lines_all`)
	if _, err := conn.ExecContext(ctx, strings.Replace(query("journal_scope"), "/*scope*/", scope.rowsCond(), 1)); err != nil {
		return fmt.Errorf("reconcile: journal %s: scope: %w", path, err)
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
	if _, err := conn.ExecContext(ctx, strings.Replace(query("rejects_to_provider"), "/*scope*/", scope.rejectsCond(), 1), sql.Named("load_no", r.loads)); err != nil {
		return fmt.Errorf("reconcile: journal %s rejects: %w", path, err)
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
