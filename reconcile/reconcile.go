// Package reconcile matches what the provider did (a results file, or the
// pipeline's journal) against the merchant's ledger in DuckDB, on
// merchant_transaction_id, exactly: every id lands in exactly one
// paybatch.Category and totals are kept per currency in integer minor units.
//
// The SQL lives in sql/*.sql. File paths and values reach DuckDB as
// parameters. Where DuckDB cannot take a parameter the text is quoted
// instead: the journal path in ATTACH and a Parquet path inside a view (string
// literals, single quotes doubled) and a Parquet file's column names
// (identifiers, double quotes doubled).
package reconcile

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"

	"github.com/paybatch/paybatch"
)

//go:embed sql/*.sql
var sqlFS embed.FS

// query returns the text of sql/<name>.sql.
func query(name string) string {
	b, err := sqlFS.ReadFile("sql/" + name + ".sql")
	if err != nil {
		// The files are embedded at build time; a missing one is a programming error.
		panic(fmt.Sprintf("reconcile: no embedded sql/%s.sql", name))
	}
	return string(b)
}

// DefaultMemoryLimit is the memory bound when Options.MemoryLimit is empty.
// Beyond it DuckDB spills to the temp directory instead of failing.
const DefaultMemoryLimit = "2GB"

// Options configure a Reconciler.
type Options struct {
	// Path is the DuckDB file to keep the reconciliation in; "" keeps it in
	// memory. The reconcile tables in an existing file are replaced.
	Path string
	// MemoryLimit bounds the reconcile's memory, e.g. "512MB", "4GB"
	// (default DefaultMemoryLimit). DuckDB's memory_limit is set to 65% of it
	// (the rest is headroom for what DuckDB does not count); beyond that
	// DuckDB spills to TempDir.
	MemoryLimit string
	// TempDir is where DuckDB spills; "" makes a fresh directory removed by Close.
	TempDir string
	// Tolerance is the largest difference, in major units of each id's
	// currency, that still counts as matched (default 0). A tolerance finer
	// than a currency's minor unit rounds down for that currency: 0.005 is
	// 0 cents for USD and 5 fils for KWD.
	Tolerance decimal.Decimal
}

// Reconciler holds one reconciliation: load the inputs, then Run, then read
// Rows or ExportParquet. Loads are serialised; Rows may be read concurrently.
type Reconciler struct {
	db      *sql.DB
	opts    Options
	tmpDir  string // removed by Close when we made it
	mu      sync.Mutex
	loads   int
	ledgers int // ledger lines loaded
	ran     bool
}

// Open starts DuckDB with the memory limit and spill directory set and
// extension auto-loading off (an extension this machine lacks fails fast
// instead of reaching for the network), and creates empty reconcile tables.
func Open(ctx context.Context, opts Options) (*Reconciler, error) {
	if opts.Tolerance.IsNegative() {
		return nil, fmt.Errorf("reconcile: tolerance %s is negative", opts.Tolerance)
	}
	if strings.ContainsAny(opts.Path, "?#") {
		return nil, fmt.Errorf("reconcile: database path %q must not contain '?' or '#'", opts.Path)
	}
	if opts.MemoryLimit == "" {
		opts.MemoryLimit = DefaultMemoryLimit
	}
	if _, err := parseSize(opts.MemoryLimit); err != nil {
		return nil, err
	}
	r := &Reconciler{opts: opts}
	tmp := opts.TempDir
	if tmp == "" {
		d, err := os.MkdirTemp("", "paybatch-reconcile-")
		if err != nil {
			return nil, fmt.Errorf("reconcile: spill directory: %w", err)
		}
		tmp, r.tmpDir = d, d
	}
	// Settings travel in the DSN's query string: configuration, not SQL.
	cfg := url.Values{}
	limit, err := parseSize(opts.MemoryLimit)
	if err != nil {
		return nil, err
	}
	cfg.Set("memory_limit", fmt.Sprintf("%dMB", int64(float64(limit)*duckdbShare)/1e6))
	cfg.Set("temp_directory", tmp)
	cfg.Set("autoinstall_known_extensions", "false")
	cfg.Set("autoload_known_extensions", "false")
	conn, err := duckdb.NewConnector(opts.Path+"?"+cfg.Encode(), nil)
	if err != nil {
		r.removeTmp()
		return nil, fmt.Errorf("reconcile: open DuckDB (memory limit %q): %w", opts.MemoryLimit, err)
	}
	r.db = sql.OpenDB(conn)
	for _, name := range []string{"schema", "vocab", "stage_reset"} {
		if _, err := r.db.ExecContext(ctx, query(name)); err != nil {
			r.Close()
			return nil, fmt.Errorf("reconcile: create tables (sql/%s.sql): %w", name, err)
		}
	}
	if err := r.addAllCurrencies(ctx); err != nil {
		r.Close()
		return nil, err
	}
	for i, c := range paybatch.Categories {
		if _, err := r.db.ExecContext(ctx, `INSERT INTO category_order VALUES (?, ?)`, string(c), i); err != nil {
			r.Close()
			return nil, fmt.Errorf("reconcile: category order: %w", err)
		}
	}
	if _, err := r.db.ExecContext(ctx, query("stage_checked")); err != nil {
		r.Close()
		return nil, fmt.Errorf("reconcile: sql/stage_checked.sql: %w", err)
	}
	return r, nil
}

// Close releases DuckDB and removes the spill directory Open made.
func (r *Reconciler) Close() error {
	var err error
	if r.db != nil {
		err = r.db.Close()
	}
	r.removeTmp()
	return err
}

func (r *Reconciler) removeTmp() {
	if r.tmpDir != "" {
		os.RemoveAll(r.tmpDir)
		r.tmpDir = ""
	}
}

// addCurrencies validates codes against ISO 4217 and records each with its
// exponent and the tolerance in its minor units. Unknown codes are left out
// (the stage check reports them with their row).
func (r *Reconciler) addCurrencies(ctx context.Context, conn *sql.Conn, codes []string) ([]string, error) {
	var unknown []string
	var values []string
	var args []any
	for _, code := range codes {
		cur, err := paybatch.ParseCurrency(code)
		if err != nil || cur.Code() != code {
			unknown = append(unknown, code)
			continue
		}
		tol := r.opts.Tolerance.Shift(int32(cur.Exponent())).Floor()
		if !tol.BigInt().IsInt64() {
			return nil, fmt.Errorf("reconcile: tolerance %s is too large for %s", r.opts.Tolerance, code)
		}
		values = append(values, "(?, ?, ?)")
		args = append(args, code, cur.Exponent(), tol.BigInt().Int64())
	}
	if len(values) > 0 {
		// one statement: placeholders only, the values are parameters
		if _, err := conn.ExecContext(ctx, `INSERT OR IGNORE INTO currencies VALUES `+strings.Join(values, ", "), args...); err != nil {
			return nil, fmt.Errorf("reconcile: currencies: %w", err)
		}
	}
	return unknown, nil
}

// addAllCurrencies fills the currencies table with every ISO 4217 code
// paybatch knows (every three-letter code paybatch.ParseCurrency accepts), so
// that loading a file needs no extra pass to collect its currencies first: a
// code missing from the table is reported by the stage check with its row.
func (r *Reconciler) addAllCurrencies(ctx context.Context) error {
	var codes []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				code := string([]rune{a, b, c})
				if cur, err := paybatch.ParseCurrency(code); err == nil && cur.Code() == code {
					codes = append(codes, code)
				}
			}
		}
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: currencies: %w", err)
	}
	defer conn.Close()
	unknown, err := r.addCurrencies(ctx, conn, codes)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		return fmt.Errorf("reconcile: currencies: unexpected unknown codes %v", unknown)
	}
	return nil
}

// ErrNotRun is returned by Rows and ExportParquet before Run.
var ErrNotRun = errors.New("reconcile: Run has not been called")
