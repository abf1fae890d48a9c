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
	"database/sql/driver"
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
	// (default DefaultMemoryLimit). DuckDB's memory_limit is set to 55% of it
	// (the rest is headroom for what DuckDB does not count), and to 30% while
	// the report's rows are read back (readShare); beyond that DuckDB spills
	// to TempDir.
	MemoryLimit string
	// TempDir is where DuckDB spills; "" makes a fresh directory removed by Close.
	TempDir string
	// Tolerance is the largest difference, in major units of each id's
	// currency, that still counts as matched (default 0). A tolerance finer
	// than a currency's minor unit rounds down for that currency: 0.005 is
	// 0 cents for USD and 5 fils for KWD.
	Tolerance decimal.Decimal
	// AcceptFormulaValues reads an XLSX formula cell in a column reconcile
	// reads (a ledger's or results file's) at the value the spreadsheet last
	// computed, which may be stale; without it the file is refused naming
	// the cell and its computed value (readers.Options.AcceptFormulaValues).
	AcceptFormulaValues bool
	// Rows says the caller will read the rows (Rows, ExportParquet): Run
	// then reads the files once and writes the report rows in that pass,
	// summing the categories and totals from them, instead of summing in a
	// pass of its own and reading and checking the files a second time for
	// the rows.
	Rows bool
}

// Reconciler holds one reconciliation: load the inputs, then Run, then read
// Rows or ExportParquet. Loads are serialised; Rows may be read concurrently.
type Reconciler struct {
	db        *sql.DB
	opts      Options
	tmpDir    string // removed by Close when we made it
	mu        sync.Mutex
	loads     int        // load numbers given so far (files and journals)
	sources   []*source  // the files loaded, in load order
	journals  []int      // load numbers of the journals (their lines are in provider)
	ledgers   int        // ledger files loaded
	ran       bool       // Run has summed the current loads
	built     bool       // recon (one row per id, for Rows) is built for the current loads
	ranges    []catRange // recon_sorted is written: each category's rows in it (nil: not yet)
	pageRows  int        // rows per query when Rows reads recon_sorted (0: defaultPageRows)
	chunkRows int        // rows handed over at a time by Rows' reading goroutine (0: defaultChunkRows)
	// fieldPages: Rows reads every page with sql/rows_fields.sql (each
	// column apart) instead of rows_page.sql — the tests' reference.
	fieldPages bool
	// driverPages: Rows reads rows_page.sql through the driver's rows
	// instead of DuckDB's C API (rows_chunks.go) — the tests' reference
	// for the C API's pages, and the road when the driver hides its
	// connection.
	driverPages bool
	// noRowsPass: Options.Rows takes the exact path even when Run's rows
	// pass would serve (tests compare the two)
	noRowsPass bool
	// passThreads: 1 runs Run's rows pass on one thread, 2 on DuckDB's
	// default threads; 0 decides by the machine's load (coresFree). Tests
	// take both whatever the load (the CSVs' row numbers must not depend
	// on the threads).
	passThreads int
	// passRoad: the view Run's rows pass last wrote recon_sorted from,
	// "packed" (the fast road) or "checked" (tests hold the cases to it)
	passRoad string
	// passCopies: the CSVs Run's rows pass last copied to number their
	// records (passCopy; tests hold the two-thread path to it)
	passCopies int
	// copyBuffer: the buffer of DuckDB's CSV reader for those copies, in
	// bytes; 0 sizes it by the file's lines (copyBuffer). Tests take small
	// ones: many buffers, and the records' order across them.
	copyBuffer int
	sum        paybatch.Summary
	threads    threadTurns // DuckDB's threads narrowed for the rows (threads.go)
	reads      readTurns   // DuckDB's memory_limit narrowed while the rows are read (memlimit.go)
	opened     cpuSample   // the machine's CPU at Open, with Options.Rows (coresFree)
	// lines Run read on each side, blank lines left out (Lines)
	ledgerLines, providerLines int64
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
	if opts.Rows { // only Run's rows pass asks (coresFree)
		r.opened = sampleCPU()
	}
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
	limit, _, err := duckdbLimits(opts.MemoryLimit)
	if err != nil {
		return nil, err
	}
	cfg.Set("memory_limit", fmt.Sprintf("%dMB", limit/1e6))
	cfg.Set("temp_directory", tmp)
	cfg.Set("autoinstall_known_extensions", "false")
	cfg.Set("autoload_known_extensions", "false")
	conn, err := duckdb.NewConnector(opts.Path+"?"+cfg.Encode(), nil)
	if err != nil {
		r.removeTmp()
		return nil, fmt.Errorf("reconcile: open DuckDB (memory limit %q): %w", opts.MemoryLimit, err)
	}
	r.db = sql.OpenDB(conn)
	if err := registerMask(ctx, r.db); err != nil {
		r.Close()
		return nil, err
	}
	for _, name := range []string{"schema", "vocab"} {
		if _, err := r.db.ExecContext(ctx, query(name)); err != nil {
			r.Close()
			return nil, fmt.Errorf("reconcile: create tables (sql/%s.sql): %w", name, err)
		}
	}
	if err := r.fillTables(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close releases DuckDB and removes the spill directory Open made.
//
// A --db file (Options.Path) is left with the card numbers of every text
// column masked (scrubMasks): its tables hold the ids the lines were matched
// on as written until then.
func (r *Reconciler) Close() error {
	for _, s := range r.sources {
		if s.lineScan != nil {
			s.lineScan.cancel()
		}
	}
	var err error
	if r.db != nil {
		if r.opts.Path != "" {
			err = scrubMasks(context.Background(), r.db)
		}
		if cerr := r.db.Close(); err == nil {
			err = cerr
		}
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

// isoCodes lists every ISO 4217 code paybatch knows (every three-letter
// code paybatch.ParseCurrency accepts), in order.
func isoCodes() []string { return paybatch.CurrencyCodes() }

// unknownCurrencies returns the codes that are not ISO 4217 codes.
func unknownCurrencies(codes []string) []string {
	var unknown []string
	for _, code := range codes {
		if cur, err := paybatch.ParseCurrency(code); err != nil || cur.Code() != code {
			unknown = append(unknown, code)
		}
	}
	return unknown
}

// fillTables fills the currencies table with every ISO 4217 code, its
// number (1..511, packed into a line by sql/checked.sql), its exponent and
// the tolerance in its minor units, so that reading a file needs no pass to
// collect its currencies first (a code missing from the table is reported
// with its row); and category_order with paybatch.Categories. Both go
// through DuckDB's Appender: one INSERT of 177 rows as parameters took
// 17-31 ms of every reconcile.
func (r *Reconciler) fillTables(ctx context.Context) error {
	codes := isoCodes()
	if len(codes) > 511 {
		return fmt.Errorf("reconcile: %d currency codes do not fit the 9 bits summary.sql packs them in", len(codes))
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "currencies")
		if err != nil {
			return fmt.Errorf("reconcile: currencies: %w", err)
		}
		for i, code := range codes {
			cur, _ := paybatch.ParseCurrency(code)
			tol := r.opts.Tolerance.Shift(int32(cur.Exponent())).Floor()
			if !tol.BigInt().IsInt64() {
				app.Close()
				return fmt.Errorf("reconcile: tolerance %s is too large for %s", r.opts.Tolerance, code)
			}
			if err := app.AppendRow(code, int16(i+1), int32(cur.Exponent()), tol.BigInt().Int64()); err != nil {
				app.Close()
				return fmt.Errorf("reconcile: currencies: %w", err)
			}
		}
		if err := app.Close(); err != nil {
			return fmt.Errorf("reconcile: currencies: %w", err)
		}
		// each code as files usually write it (sql/schema.sql)
		if app, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "currency_lookup"); err != nil {
			return fmt.Errorf("reconcile: currencies: %w", err)
		}
		for i, code := range codes {
			cur, _ := paybatch.ParseCurrency(code)
			lower := strings.ToLower(code)
			for _, raw := range []string{code, lower, code[:1] + lower[1:]} {
				if err := app.AppendRow(raw, int16(i+1), int32(cur.Exponent())); err != nil {
					app.Close()
					return fmt.Errorf("reconcile: currencies: %w", err)
				}
			}
		}
		if err := app.Close(); err != nil {
			return fmt.Errorf("reconcile: currencies: %w", err)
		}
		if app, err = duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "category_order"); err != nil {
			return fmt.Errorf("reconcile: category order: %w", err)
		}
		for i, c := range paybatch.Categories {
			if err := app.AppendRow(string(c), int32(i)); err != nil {
				app.Close()
				return fmt.Errorf("reconcile: category order: %w", err)
			}
		}
		if err := app.Close(); err != nil {
			return fmt.Errorf("reconcile: category order: %w", err)
		}
		return nil
	})
}

// ErrNotRun is returned by Rows and ExportParquet before Run.
var ErrNotRun = errors.New("reconcile: Run has not been called")
