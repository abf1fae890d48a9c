package reconcile

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
)

// rowsPass is Run's single pass when the rows are wanted (Options.Rows):
// the files are read once into recon_sorted, the joined rows with the
// columns a report row shows, sorted (sql/rows_pass.sql); the summary is
// summed from it (sql/rows_pass_summary.sql) and each category's place in
// it is known from the counts. exact is false when the usual case does not
// hold (a duplicate id, a line with a problem): Run then takes the exact
// path, which writes recon_sorted again.
// A journal, or a --db file that should hold the tables, is not for this
// pass (the caller decides).
func (r *Reconciler) rowsPass(ctx context.Context, conn *sql.Conn) (sum paybatch.Summary, ranges []catRange, exact bool, err error) {
	// one thread unless a core is idle (threads.go); tests choose
	parallel := r.passThreads == 2 || r.passThreads == 0 && coresFree(ctx, r.opened)
	if !parallel {
		release, err := r.oneThread(ctx)
		if err != nil {
			return sum, nil, false, err
		}
		defer release()
	}
	curs, byNo, err := r.currencyNumbers(ctx, conn)
	if err != nil {
		return sum, nil, false, err
	}
	tols := make([]int64, len(byNo))
	exps := make([]int32, len(byNo))
	for i, t := range byNo {
		tols[i] = t.tol
		exps[i] = int32(curs[t.code].Exponent())
	}
	// A CSV DuckDB reads has no row numbers: for this pass its src_<n> numbers
	// its records in file order (the row numbers the text copy's rowids give,
	// insertLines), which are its lines: a CSV whose records are not one
	// line each was read in Go just above (numberByLines, csvlines.go); the
	// pass's view is dropped after, and the plain one made again when
	// something reads src_<n> by name (ensureSrc). On one thread the
	// records are numbered as they are read, by a window (row_number() OVER
	// ()): a streaming window, which holds the whole pipeline above it to
	// one thread — the reader, the checks, the join's build or probe up to
	// the sort. With threads to spare (and the copies small beside DuckDB's
	// memory: copyFits) each CSV is first copied, the columns the pass reads
	// only, into a table (passCopy), which DuckDB writes on every thread in
	// file order: its rowids number the records as the window does, and the
	// checks, the join, the sort and the write then run on every thread
	// (BENCHMARKS.md #19, session 9). On one thread the copy would only
	// cost its CPU.
	var numbered, copies []*source
	defer func() {
		// src_<n> is dropped, not put back over the reader (csvView):
		// creating that view binds read_csv, whose sniffer reads the file's
		// first buffer (≈ 17–20 ms for the two 1M-line CSVs; BENCHMARKS.md
		// #19, session 12), and nothing reads it after a pass that serves.
		// What reads it by name makes it first (ensureSrc: checked_<n>;
		// the exact path's insertLines and a pass again make their own).
		for _, s := range numbered {
			if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`DROP VIEW IF EXISTS src_%d`, s.n)); rerr != nil && err == nil {
				err = fmt.Errorf("reconcile: %s: %w", s.path, rerr)
			}
			s.srcView = false
		}
		for _, s := range copies {
			if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`DROP TABLE IF EXISTS pass_copy_%d`, s.n)); rerr != nil && err == nil {
				err = fmt.Errorf("reconcile: %s: %w", s.path, rerr)
			}
		}
	}()
	codes := make([]string, len(byNo))
	for i, t := range byNo {
		codes[i] = t.code
	}
	// a CSV whose records are not one line each is read in Go first: its
	// records' places are not its lines (csvlines.go)
	if err := r.numberByLines(ctx, conn); err != nil {
		return sum, nil, false, err
	}
	for _, s := range r.sources {
		if s.duckCSV() && !s.copied {
			numbered = append(numbered, s)
		}
	}
	useCopies := parallel && r.copyFits(numbered) && keepsOrder(ctx, conn)
	r.passCopies = 0
	if useCopies {
		r.passCopies = len(numbered)
	}
	for _, s := range numbered {
		if useCopies {
			copies = append(copies, s)
			buffer := r.copyBuffer
			if buffer == 0 {
				buffer = copyBuffer(s.path)
			}
			if err := passCopy(ctx, conn, s, buffer); err != nil {
				return sum, nil, false, err
			}
			continue
		}
		if _, err := conn.ExecContext(ctx, windowView(s)); err != nil {
			return sum, nil, false, fmt.Errorf("reconcile: %s: %w", s.path, err)
		}
	}
	// The pass reads packed_<n> by name. It is created here, over src_<n>
	// as numbered just above, and not before: created over the plain view
	// of a CSV, DuckDB's sniffer read the file's start for src_<n> and
	// again for packed_<n>, both views then left for the copy's (≈ 35 ms
	// of the pass's start at 1M ids per side, BENCHMARKS.md #19 session
	// 12). A view reads another by name: packed_<n> reads whichever
	// src_<n> is there when it is read (dropped after the pass, below).
	for _, s := range numbered {
		s.srcView = true
	}
	for _, s := range r.sources {
		if err := s.ensurePacked(ctx, conn); err != nil {
			return sum, nil, false, err
		}
	}
	// the lines on the fast road first (packed_<n>, as Run's single pass
	// does, fastSummary); a line off it comes out 'bad' (a problem, a
	// spelling packed_<n> does not take, an id to trim), and the pass runs
	// again over checked_<n>, which converts every line (sql/checked.sql)
	bad, err := r.rowsPassTable(ctx, conn, "packed", tols, exps, codes)
	if err != nil {
		return sum, nil, false, err
	}
	if bad {
		// checked_<n> reads every column of the file: the copies hold
		// those the fast road reads only
		for _, s := range copies {
			if _, err := conn.ExecContext(ctx, windowView(s)); err != nil {
				return sum, nil, false, fmt.Errorf("reconcile: %s: %w", s.path, err)
			}
		}
		for _, s := range r.sources {
			if err := s.ensureChecked(ctx, conn); err != nil {
				return sum, nil, false, err
			}
		}
		if _, err := r.rowsPassTable(ctx, conn, "checked", tols, exps, codes); err != nil {
			return sum, nil, false, err
		}
	}
	// recon_sorted is written: what follows, here and in the drain, reads it
	// (memlimit.go, readShare)
	defer r.readingMemory(ctx)()

	// Every line is in the table at least once (a full outer join); a load
	// with more rows than lines has a line joined twice: a duplicate. Each
	// load's rows and its last row number come from one scan of the seqs,
	// every load's counted by a filter on its range of seqs (load × 10^10 +
	// row): no grouping (traced at 1M ids per side, a GROUP BY of the
	// loads took 24–43 ms, this 4–10; BENCHMARKS.md #19, session 12).
	var aggs []string
	for _, s := range r.sources {
		col := "p_seq"
		if s.kind == kindLedger {
			col = "l_seq"
		}
		lo := int64(s.n) * 10000000000
		in := fmt.Sprintf("%s BETWEEN %d AND %d", col, lo, lo+9999999999)
		aggs = append(aggs, fmt.Sprintf("count(*) FILTER (WHERE %[1]s), coalesce(max(%[2]s) FILTER (WHERE %[1]s) - %[3]d, 0)", in, col, lo))
	}
	loadRows, maxRows := make([]int64, len(r.sources)), make([]int64, len(r.sources))
	dest := make([]any, 0, 2*len(r.sources))
	for i := range r.sources {
		dest = append(dest, &loadRows[i], &maxRows[i])
	}
	if err := conn.QueryRowContext(ctx, `SELECT `+strings.Join(aggs, ", ")+` FROM recon_sorted`).Scan(dest...); err != nil {
		return sum, nil, false, fmt.Errorf("reconcile: rows pass: %w", err)
	}
	var nLedger, nProvider int64
	for i, s := range r.sources {
		n := maxRows[i] - 1 // records numbered from 2 (the header is row 1)
		if !slices.Contains(numbered, s) {
			if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM src_%d`, s.n)).Scan(&n); err != nil {
				return sum, nil, false, fmt.Errorf("reconcile: %s: %w", s.path, err)
			}
		}
		if loadRows[i] != n {
			return sum, nil, false, nil // a line joined more than once
		}
		if s.kind == kindLedger {
			nLedger += n
		} else {
			nProvider += n
		}
	}
	rows, err := conn.QueryContext(ctx, strings.Replace(query("rows_pass_summary"), "/*summary_rows*/", strings.TrimSpace(query("summary_rows")), 1))
	if err != nil {
		return sum, nil, false, fmt.Errorf("reconcile: sql/rows_pass_summary.sql: %w", err)
	}
	sum, st, err := r.summaryRows(rows, curs, byNo)
	rows.Close()
	if err != nil || !st.exact {
		return paybatch.Summary{}, nil, false, err
	}
	if st.lRows != nLedger || st.pRows != nProvider {
		return paybatch.Summary{}, nil, false, nil
	}
	// recon_sorted holds the categories in precedence order, one row per id
	ranges = []catRange{}
	var next int64
	for _, c := range paybatch.Categories {
		if n := sum.Categories[c].Count; n > 0 {
			ranges = append(ranges, catRange{cat: c, first: next, last: next + n - 1})
			next += n
		}
	}
	// an unmatched id with more than one line (on its one side) is more
	// than one row of its category
	if multi, err := unmatchedTwice(ctx, conn, sum, ranges); err != nil || multi {
		return paybatch.Summary{}, nil, false, err
	}
	r.ledgerLines, r.providerLines = nLedger-st.blankL, nProvider-st.blankP
	return sum, ranges, true, nil
}

// unmatchedTwice says whether an unmatched id (missing_at_provider,
// missing_in_ledger) has more than one row in recon_sorted, as the
// ranges the summary gives place them, or the rows of those categories are
// not all there (never so: the table is written in its order): the rows
// pass does not serve then. Only the unmatched categories' range is read
// (the scan takes the rowids): traced at 1M ids per side, grouping the
// unmatched rows of the whole table took 26–36 ms, this range of 40,000
// 5–11 (BENCHMARKS.md #19, session 12).
func unmatchedTwice(ctx context.Context, conn *sql.Conn, sum paybatch.Summary, ranges []catRange) (bool, error) {
	first, last, want := int64(-1), int64(-1), int64(0)
	for _, cr := range ranges {
		if cr.cat != paybatch.CatMissingAtProvider && cr.cat != paybatch.CatMissingInLedger {
			continue
		}
		if first < 0 {
			first = cr.first
		}
		last = cr.last
		want += sum.Categories[cr.cat].Count
	}
	if want == 0 {
		return false, nil
	}
	var rows, most int64
	err := conn.QueryRowContext(ctx, `SELECT coalesce(sum(n), 0), coalesce(max(n), 0) FROM (
		SELECT count(*) AS n FROM recon_sorted WHERE rowid BETWEEN $1 AND $2 AND key & 15 IN (4, 5) GROUP BY merchant_transaction_id)`,
		first, last).Scan(&rows, &most)
	if err != nil {
		return false, fmt.Errorf("reconcile: rows pass: %w", err)
	}
	return rows != want || most > 1, nil
}

// windowView makes src_<n> of a CSV DuckDB reads number its records in
// file order as they are read: row_number() over the reader, from 2 (the
// header is row 1).
func windowView(s *source) string {
	return fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT * EXCLUDE (src_row), (row_number() OVER () + 1)::INTEGER AS src_row FROM %s`, s.n, s.csvRead)
}

// passRoles are the columns of a CSV the fast road (sql/packed.sql) reads;
// passCopy copies these only.
var passRoles = []string{roleID, roleAmount, roleCurrency, roleStatus, roleExpectedStatus, roleProviderID, roleReason}

// passCopy copies the columns of s that the fast road reads (those of
// passRoles the file has) into pass_copy_<n>, read with buffers of buffer
// bytes (copyBuffer), and makes src_<n> a view over it numbering the
// records by rowid: DuckDB writes a table in the order of
// its source (preserve_insertion_order, on), on every thread, so its
// rowids are the records' places in the file, as row_number() over the
// reader gives them (windowView) and as insertLines' text copy does; the
// header is row 1. That holds for a plain projection of the reader only
// (DuckDB's BATCH_CREATE_TABLE_AS): with a join above it, as packed_<n>'s
// lookups, DuckDB writes the table in any order (copying packed_<n> so put
// 80–90 % of a 1M-line file's records elsewhere than the window did;
// BENCHMARKS.md #19, session 9). TestRowsPassCopyNumbers holds the order.
// The file's other columns (the type, the date) are NULL in this view: the
// fast road reads none of them, and the pass puts windowView back before
// it reads checked_<n>.
func passCopy(ctx context.Context, conn *sql.Conn, s *source, buffer int) error {
	var cols, view []string
	for _, role := range stageRoles {
		_, has := s.hm.original[role]
		if has && slices.Contains(passRoles, role) {
			cols = append(cols, quoteIdent(role))
			view = append(view, quoteIdent(role))
		} else {
			view = append(view, "NULL::VARCHAR AS "+role)
		}
	}
	for _, q := range []string{
		fmt.Sprintf(`CREATE OR REPLACE TABLE pass_copy_%d AS SELECT %s FROM %s`, s.n, strings.Join(cols, ", "), s.csvReadWith(buffer)),
		fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT %s, %s, (rowid + 2)::INTEGER AS src_row FROM pass_copy_%d`, s.n, strings.Join(view, ", "), textAmount, s.n),
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("reconcile: %w", ctx.Err())
			}
			return fmt.Errorf("reconcile: %s: %w", s.path, err)
		}
	}
	return nil
}

// copyBuffer is the buffer of DuckDB's CSV reader for the copy of the CSV
// at path (passCopy): enough for about 160,000 of its lines, at least
// 8 MiB, at most 32 MiB (DuckDB holds a few per reading thread). DuckDB's
// reading threads take a buffer's records at a time, and the ordered table
// write (BATCH_CREATE_TABLE_AS) writes a batch of a row group or more
// (122,880 rows) as it comes, but copies a smaller one a second time to
// merge it with its neighbours. With src_<n>'s 4 MB buffers (csvBuffer)
// every batch of a 1M-line file of ~43-byte lines was that small: the two
// copies at 1M ids per side took 0.75–1.17 cpu-s (mean 0.93) where 8 MiB
// buffers take 0.50–0.69 (mean 0.57); a file of 106-byte lines needs
// 16 MiB (0.25–0.27 cpu-s per 600k lines against 0.38–0.39 at 8 MiB).
// Larger buffers than needed leave a thread idle at the file's end
// (BENCHMARKS.md #19, session 10). The lines' length is taken from the
// file's first 256 KiB.
func copyBuffer(path string) int {
	const least, most = 8 << 20, 32 << 20
	f, err := os.Open(path)
	if err != nil {
		return least // passCopy's read names the error
	}
	defer f.Close()
	head := make([]byte, 256<<10)
	n, _ := io.ReadFull(f, head)
	lines := bytes.Count(head[:n], []byte{'\n'})
	if lines == 0 {
		return least
	}
	size := (160_000*(n/lines) + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB
	return min(max(size, least), most)
}

// copyFits says whether the CSVs' copies for the rows pass (passCopy) are
// small beside DuckDB's memory limit: their files together at most a
// quarter of it. A copy takes about 1.5 times its file's bytes in DuckDB's
// memory (1M ids per side: 84 MB of files, 123 MB of copies); beyond its
// limit DuckDB would write the copies to its spill directory and read them
// back (a 10M run), so larger files are numbered by the window instead.
func (r *Reconciler) copyFits(srcs []*source) bool {
	limit, err := parseSize(r.opts.MemoryLimit)
	if err != nil {
		return false
	}
	var total int64
	for _, s := range srcs {
		st, err := os.Stat(s.path)
		if err != nil {
			return false
		}
		total += st.Size()
	}
	return float64(total) <= float64(limit)*duckdbShare/4
}

// keepsOrder says whether DuckDB writes a table in the order of its source
// (preserve_insertion_order, on unless a step turned it off for a while:
// insertLines): the copies number the records by it (passCopy). When it is
// off, or cannot be read, the records are numbered by the window.
func keepsOrder(ctx context.Context, conn *sql.Conn) bool {
	var on bool
	err := conn.QueryRowContext(ctx, `SELECT current_setting('preserve_insertion_order')`).Scan(&on)
	return err == nil && on
}

// rowsPassTable writes recon_pass (sql/rows_pass.sql) from every load's
// view, and recon_sorted as a view over it (passView): "packed" (the fast
// road: a line off it is 'bad', as is a joined id to trim) or "checked"
// (every line converted, as the exact path reads them). A good line of
// packed_<n> shows what checked_<n> shows of it: the same id, pack and
// amount (TestPackedMatchesChecked); its currency the code of its number,
// from the key (checked_<n> upper-cases and trims a spelling such as 'usd'
// to the code); its status a word of status_lookup as written, with
// no space to trim and never empty (checked_<n>'s status_text); the free
// text trimmed here as checked_<n> trims it. A blank line shows nothing
// (it is not a report row).
// Over packed_<n> the first such line stops the statement (offRoad, an
// error() in the key): bad is then true and recon_pass is not written.
func (r *Reconciler) rowsPassTable(ctx context.Context, conn *sql.Conn, view string, tols []int64, exps []int32, codes []string) (bad bool, err error) {
	r.passRoad = view
	ok, padded, badKey := "ok", "false", "2" // checked_<n> trims its ids
	amount, status := "amount_minor", "status_text"
	providerID, reason := "provider_id", "reason"
	if view == "packed" {
		ok, padded, badKey = "good", "padded_id(coalesce(lid, pid))", "error('"+offRoad+"')"
		status = "status_raw"
		providerID, reason = "nullif(trim(provider_id_raw), '')", "nullif(trim(reason_raw), '')"
	}
	// a column no file of its side has is NULL on every line: not carried
	// through the join, the sort and the table; the view says NULL
	// (passColumns)
	carried := r.passColumns()
	var ledger, provider []string
	for _, s := range r.sources {
		side := "p"
		if s.kind == kindLedger {
			side = "l"
		}
		cols := []string{
			fmt.Sprintf("CASE WHEN %s THEN id END AS id", ok),
			fmt.Sprintf("CASE WHEN %s THEN pack WHEN blank THEN 1125899906842624 END AS %spack", ok, side),
		}
		seq := fmt.Sprintf("%d::BIGINT * 10000000000 + src_row", s.n)
		if s.kind == kindLedger { // the status masked as to_ledger.sql does
			cols = append(cols, amount+" AS ledger_amount_minor")
			if carried.ledgerStatus {
				cols = append(cols, "mask_cards("+status+") AS ledger_status")
			}
			cols = append(cols, seq+" AS l_seq")
			ledger = append(ledger, fmt.Sprintf("SELECT %s FROM %s_%d", strings.Join(cols, ",\n        "), view, s.n))
			continue
		}
		// free text and the provider's id: card numbers masked (mask_cards,
		// sql/mask.sql) as to_provider.sql does; the reason twice, as
		// to_provider.sql and then rows_sorted.sql mask it (a text without
		// a card number is tested once, as mask_cards tests it)
		cols = append(cols, amount+" AS provider_amount_minor")
		if carried.providerStatus {
			cols = append(cols, "mask_cards("+status+") AS provider_status")
		}
		if carried.providerID {
			cols = append(cols, "mask_cards("+providerID+") AS provider_id")
		}
		if carried.reason {
			cols = append(cols, fmt.Sprintf("CASE WHEN has_card(%[1]s) THEN mask_cards(paybatch_mask(%[1]s)) ELSE %[1]s END AS reason", reason))
		}
		cols = append(cols, seq+" AS p_seq")
		provider = append(provider, fmt.Sprintf("SELECT %s FROM %s_%d", strings.Join(cols, ",\n        "), view, s.n))
	}
	if len(provider) == 0 { // no results file: passColumns carries none of its columns
		provider = append(provider, `SELECT NULL::VARCHAR AS id, NULL::BIGINT AS ppack, NULL::BIGINT AS provider_amount_minor, NULL::BIGINT AS p_seq WHERE false`)
	}
	const sep = "\n    UNION ALL\n    "
	q := strings.NewReplacer("/*ledger*/", strings.Join(ledger, sep), "/*provider*/", strings.Join(provider, sep),
		"/*key*/", reconKey(padded, badKey)).Replace(query("rows_pass"))
	if _, err := conn.ExecContext(ctx, q, sql.Named("tols", tols)); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("reconcile: %w", ctx.Err())
		}
		if view == "packed" && strings.Contains(err.Error(), offRoad) {
			return true, nil
		}
		return false, fmt.Errorf("reconcile: sql/rows_pass.sql: %w", err)
	}
	if err := passView(ctx, conn, codes, exps, carried); err != nil {
		return false, err
	}
	return false, nil
}

// passColumns says which of a report row's columns from a line the rows
// pass carries (rows_pass.sql): those that a file of their side has (a
// ledger's expected status; a results file's status, transaction id,
// reason). Without the file's column every line's is NULL (src_<n>), and
// so is the row's.
func (r *Reconciler) passColumns() (c passCarried) {
	for _, s := range r.sources {
		has := func(role string) bool { _, ok := s.hm.original[role]; return ok }
		if s.kind == kindLedger {
			c.ledgerStatus = c.ledgerStatus || has(roleExpectedStatus)
			continue
		}
		c.providerStatus = c.providerStatus || has(roleStatus)
		c.providerID = c.providerID || has(roleProviderID)
		c.reason = c.reason || has(roleReason)
	}
	return c
}

// passCarried: the optional columns of recon_pass (passColumns).
type passCarried struct {
	ledgerStatus, providerStatus, providerID, reason bool
}

// passView makes recon_sorted the view over the pass's table
// (sql/rows_pass_view.sql), with codes (the currency codes by number),
// exps (their exponents) and the columns recon_pass carries written into
// it; a recon_sorted table (the exact path's, rows_sorted.sql) is dropped
// first.
func passView(ctx context.Context, conn *sql.Conn, codes []string, exps []int32, carried passCarried) error {
	if err := dropSorted(ctx, conn, "BASE TABLE"); err != nil {
		return err
	}
	quoted := make([]string, len(codes))
	for i, c := range codes {
		quoted[i] = quoteLiteral(c)
	}
	nums := make([]string, len(exps))
	for i, e := range exps {
		nums[i] = strconv.Itoa(int(e))
	}
	column := func(name string, has bool) string {
		if has {
			return name
		}
		return "NULL::VARCHAR"
	}
	q := strings.NewReplacer("/*codes*/", "["+strings.Join(quoted, ", ")+"]", "/*exps*/", "["+strings.Join(nums, ", ")+"]",
		"/*ledger_status*/", column("ledger_status", carried.ledgerStatus),
		"/*provider_status*/", column("provider_status", carried.providerStatus),
		"/*provider_id*/", column("provider_id", carried.providerID),
		"/*reason*/", column("reason", carried.reason)).
		Replace(query("rows_pass_view"))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("reconcile: sql/rows_pass_view.sql: %w", err)
	}
	return nil
}

// dropSorted drops recon_sorted when it is of kind ("VIEW": the rows
// pass's view, with its table recon_pass; "BASE TABLE": the exact path's
// table): DuckDB replaces or drops an object only as the kind it is.
func dropSorted(ctx context.Context, conn *sql.Conn, kind string) error {
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'recon_sorted' AND table_type = $1`, kind).Scan(&n); err != nil {
		return fmt.Errorf("reconcile: recon_sorted: %w", err)
	}
	var drops []string
	switch {
	case n > 0 && kind == "VIEW":
		drops = []string{`DROP VIEW recon_sorted`, `DROP TABLE IF EXISTS recon_pass`}
	case n > 0:
		drops = []string{`DROP TABLE recon_sorted`}
	}
	for _, q := range drops {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reconcile: recon_sorted: %w", err)
		}
	}
	return nil
}

// offRoad is the error rows_pass.sql raises over packed_<n> at a line off
// the fast road (rowsPassTable).
const offRoad = "paybatch rows pass: a line off the fast road"

// querier is what scanWith reads from: the reconciler's *sql.DB or one of
// its connections.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// scanWith runs q on db and calls each for every row.
func scanWith(ctx context.Context, db querier, q string, each func(*sql.Rows) error, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
