package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/writers"
)

// Run reads every loaded file once, categorises every id and returns the
// counts, the per-category totals per currency, the match rate and the
// ledger and provider totals. It needs at least one ledger.
//
// The usual case, every id with at most one ledger line and one provider
// line, is summed in a single pass over the files that keeps no row: the two
// sides joined on the id, and a count of each side's lines that proves no id
// was duplicated (sql/summary.sql). Otherwise (duplicates, or a journal id
// both rejected and executed) Run falls back to the exact path: the lines
// are inserted into the ledger and provider tables and categorised there
// (sql/categorize.sql). With Options.Rows the single pass writes the
// report rows themselves, sorted, and the sums are read from them
// (rowsPass: no second read of the files, no categorising join); a
// duplicate, a line with a problem, a journal or a --db file take the exact
// path instead.
// A file with a bad line is refused whole with an *InputError naming the
// lines (row, column, value, reason); that file is then forgotten, so the
// other loads can be run again. A Run its context stops returns the
// context's error.
func (r *Reconciler) Run(ctx context.Context) (paybatch.Summary, error) {
	sum, err := r.run(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// the statement the context stopped said DuckDB's "INTERRUPT
		// Error: Interrupted!", which says less (TestRunStoppedSaysContext)
		return sum, fmt.Errorf("reconcile: %w", ctx.Err())
	}
	return sum, err
}

func (r *Reconciler) run(ctx context.Context) (paybatch.Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = false
	if r.ledgers == 0 {
		return paybatch.Summary{}, fmt.Errorf("%w: no ledger loaded; reconciliation needs the merchant's ledger", paybatch.ErrUnusableFile)
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return paybatch.Summary{}, fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	var sum paybatch.Summary
	exact := false
	r.ranges = nil
	switch {
	case !r.opts.Rows:
		if sum, exact, err = r.readSummary(ctx, conn, r.fastSummary); err != nil {
			return paybatch.Summary{}, err
		}
	case r.opts.Path == "" && len(r.journals) == 0 && !r.built && !r.noRowsPass:
		// one pass gives the summary and the rows (rowsPass)
		var ranges []catRange
		pass := func(ctx context.Context, conn *sql.Conn) (s paybatch.Summary, ok bool, err error) {
			s, ranges, ok, err = r.rowsPass(ctx, conn)
			return s, ok, err
		}
		if sum, exact, err = r.readSummary(ctx, conn, pass); err != nil {
			return paybatch.Summary{}, err
		}
		if exact {
			if total := sumCount(sum); total > 0 {
				sum.MatchRate = float64(sum.Categories[paybatch.CatMatched].Count) / float64(total)
			}
			if err := r.checkDifference(sum); err != nil {
				return paybatch.Summary{}, err
			}
			r.sum, r.ran, r.ranges = sum, true, ranges
			return sum, nil
		}
	}
	if !exact || r.opts.Path != "" {
		// the exact path, or a --db file that should hold the tables
		if err := r.build(ctx, conn); err != nil {
			return paybatch.Summary{}, err
		}
		if !exact {
			if sum, err = r.reconSummary(ctx); err != nil {
				return paybatch.Summary{}, err
			}
		} else if err := r.checkBuilt(ctx, sum); err != nil {
			return paybatch.Summary{}, err
		}
	}
	if r.built { // the tables hold every line
		if err := conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM ledger), (SELECT count(*) FROM provider)`).
			Scan(&r.ledgerLines, &r.providerLines); err != nil {
			return paybatch.Summary{}, fmt.Errorf("reconcile: count lines: %w", err)
		}
	}
	if err := r.checkDifference(sum); err != nil {
		return paybatch.Summary{}, err
	}
	r.sum, r.ran = sum, true
	return sum, nil
}

// sumCount is the number of ids in every category.
func sumCount(sum paybatch.Summary) int64 {
	var n int64
	for _, ct := range sum.Categories {
		n += ct.Count
	}
	return n
}

// readSummary runs pass (fastSummary or rowsPass); when DuckDB's CSV reader
// refuses a CSV, that file (or, when the message names none, every CSV
// DuckDB reads) is read in Go instead (stageCSV, which reads it or names
// what is wrong) and the pass runs once more.
func (r *Reconciler) readSummary(ctx context.Context, conn *sql.Conn,
	pass func(context.Context, *sql.Conn) (paybatch.Summary, bool, error)) (paybatch.Summary, bool, error) {
	sum, exact, err := pass(ctx, conn)
	var ie *InputError
	if err == nil || ctx.Err() != nil || errors.As(err, &ie) {
		return sum, exact, err
	}
	staged := false
	path := csvErrorFile(err)
	for _, s := range r.sources {
		if s.duckCSV() && !s.inserted && (path == "" || s.path == path) {
			if serr := stageCSV(ctx, conn, s); serr != nil {
				return sum, false, serr
			}
			staged = true
		}
	}
	if !staged {
		return sum, exact, err
	}
	return pass(ctx, conn)
}

// build inserts every file's lines into ledger and provider (once per
// file) and categorises every id into recon (sql/categorize.sql), with the
// rows view on top (sql/recon_rows.sql). A file with a bad line stops it
// with an *InputError and is forgotten.
func (r *Reconciler) build(ctx context.Context, conn *sql.Conn) error {
	if r.built {
		return nil
	}
	for i, s := range r.sources {
		err := withFallback(ctx, conn, s, func() error { return insertLines(ctx, conn, s) })
		if err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				dropSource(conn, s)
				r.sources = append(r.sources[:i:i], r.sources[i+1:]...)
				if s.kind == kindLedger {
					r.ledgers--
				}
			}
			return err
		}
	}
	// recon is read by ORDER BY queries only, so it may be built unordered.
	for _, q := range []string{`SET preserve_insertion_order = false`, query("categorize"),
		`SET preserve_insertion_order = true`, query("recon_rows")} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), `SET preserve_insertion_order = true`)
			return fmt.Errorf("reconcile: categorise: %w", err)
		}
	}
	r.built, r.ranges = true, nil // recon_sorted is written again when read
	return nil
}

// ensureBuilt builds recon for Rows and ExportParquet after a Run that did
// not need it, checks that it agrees with what Run returned, and writes
// recon_sorted (sql/rows_sorted.sql). It returns where each category's rows
// lie in recon_sorted, in precedence order.
func (r *Reconciler) ensureBuilt(ctx context.Context) ([]catRange, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.ran {
		return nil, ErrNotRun
	}
	if r.ranges != nil { // recon_sorted is written (build, or Run's rowsPass)
		return r.ranges, nil
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	if !r.built {
		if err := r.build(ctx, conn); err != nil {
			return nil, err
		}
		if err := r.checkBuilt(ctx, r.sum); err != nil {
			return nil, err
		}
	}
	// the rows pass's view and its table, if a pass wrote them (passView)
	if err := dropSorted(ctx, conn, "VIEW"); err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, query("rows_sorted")); err != nil {
		return nil, fmt.Errorf("reconcile: sql/rows_sorted.sql: %w", err)
	}
	rows, err := conn.QueryContext(ctx, query("rows_ranges"))
	if err != nil {
		return nil, fmt.Errorf("reconcile: sql/rows_ranges.sql: %w", err)
	}
	defer rows.Close()
	ranges := []catRange{}
	for rows.Next() {
		var cr catRange
		if err := rows.Scan(&cr.cat, &cr.first, &cr.last); err != nil {
			return nil, fmt.Errorf("reconcile: sql/rows_ranges.sql: %w", err)
		}
		ranges = append(ranges, cr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reconcile: sql/rows_ranges.sql: %w", err)
	}
	r.ranges = ranges
	return ranges, nil
}

// catRange is where one category's rows lie in recon_sorted: rowids first
// to last.
type catRange struct {
	cat         paybatch.Category
	first, last int64
}

// checkBuilt compares the categories counted in recon with the single-pass
// summary: they differ only if a file changed in between.
func (r *Reconciler) checkBuilt(ctx context.Context, sum paybatch.Summary) error {
	counts := map[paybatch.Category]int64{}
	err := r.scan(ctx, query("counts"), func(rows *sql.Rows) error {
		var c string
		var n int64
		err := rows.Scan(&c, &n)
		counts[paybatch.Category(c)] = n
		return err
	})
	if err != nil {
		return fmt.Errorf("reconcile: sql/counts.sql: %w", err)
	}
	for _, c := range paybatch.Categories {
		if counts[c] != sum.Categories[c].Count {
			r.built = false
			return fmt.Errorf("%w: %s: %d ids when the files were read again, %d before; did an input file change during the reconcile?",
				paybatch.ErrUnusableFile, c, counts[c], sum.Categories[c].Count)
		}
	}
	return nil
}

// fastSummary runs sql/summary.sql over every load and checks its joined
// rows against its count of lines. exact is false when a line has a problem
// or an id has several lines of one side: the summary is then incomplete and
// Run takes the exact path.
func (r *Reconciler) fastSummary(ctx context.Context, conn *sql.Conn) (sum paybatch.Summary, exact bool, err error) {
	if len(r.journals) > 0 {
		var big int
		if err := conn.QueryRowContext(ctx, query("journal_big"), sql.Named("loads", r.journalLoads())).Scan(&big); err != nil {
			return sum, false, fmt.Errorf("reconcile: sql/journal_big.sql: %w", err)
		}
		if big > 0 {
			return sum, false, nil // amounts beyond what a pack holds
		}
		var refused int
		if err := conn.QueryRowContext(ctx, query("refused_lines"), sql.Named("loads", r.journalLoads())).Scan(&refused); err != nil {
			return sum, false, fmt.Errorf("reconcile: sql/refused_lines.sql: %w", err)
		}
		if refused > 0 {
			return sum, false, nil // a pack has no class for a refusal
		}
	}
	curs, byNo, err := r.currencyNumbers(ctx, conn)
	if err != nil {
		return sum, false, err
	}
	tols := make([]int64, len(byNo))
	for i, t := range byNo {
		tols[i] = t.tol
	}
	// the lines on the fast road first (packed_<n>); a line off it (or
	// with a problem) is 'bad' there, and the pass runs again over
	// checked_<n>, which converts every line (sql/checked.sql)
	sum, st, err := r.summaryPass(ctx, conn, "packed", curs, byNo, tols)
	if err == nil && st.bad && !st.multi {
		for _, s := range r.sources {
			if err = s.ensureChecked(ctx, conn); err != nil {
				return sum, false, err
			}
		}
		sum, st, err = r.summaryPass(ctx, conn, "checked", curs, byNo, tols)
	}
	if err != nil || !st.exact {
		return sum, false, err
	}
	total, lRows, pRows, nLedger, nProvider, blankL, blankP := st.total, st.lRows, st.pRows, st.nLedger, st.nProvider, st.blankL, st.blankP
	// a joined row per line on each side, or some id has one line on a side
	// and several on the other (sql/summary.sql)
	if lRows != nLedger || pRows != nProvider {
		return sum, false, nil
	}
	if len(r.journals) > 0 {
		// id-less rejects: each its own rejected_before_send
		var n int64
		if err := conn.QueryRowContext(ctx, query("journal_orphans"), sql.Named("loads", r.journalLoads())).Scan(&n); err != nil {
			return sum, false, fmt.Errorf("reconcile: sql/journal_orphans.sql: %w", err)
		}
		ct := sum.Categories[paybatch.CatRejectedBeforeSend]
		ct.Count += n
		total += n
		sum.Categories[paybatch.CatRejectedBeforeSend] = ct
		nProvider += n
	}
	r.ledgerLines, r.providerLines = nLedger-blankL, nProvider-blankP
	if total > 0 {
		sum.MatchRate = float64(sum.Categories[paybatch.CatMatched].Count) / float64(total)
	}
	return sum, true, nil
}

// summaryPass runs sql/summary.sql over every file's view (view: "packed"
// or "checked", sql/checked.sql) and reads its rows.
func (r *Reconciler) summaryPass(ctx context.Context, conn *sql.Conn, view string,
	curs map[string]paybatch.Currency, byNo []currencyNo, tols []int64) (paybatch.Summary, summaryStats, error) {
	rows, err := conn.QueryContext(ctx, r.summarySQL(view), sql.Named("tols", tols), sql.Named("loads", r.journalLoads()))
	if err != nil {
		if ctx.Err() != nil {
			return paybatch.Summary{}, summaryStats{}, fmt.Errorf("reconcile: %w", ctx.Err())
		}
		return paybatch.Summary{}, summaryStats{}, fmt.Errorf("reconcile: sql/summary.sql: %w", err)
	}
	defer rows.Close()
	return r.summaryRows(rows, curs, byNo)
}

// summaryStats is what summaryRows counted besides the summary.
type summaryStats struct {
	exact      bool // no 'bad' or 'multi' row
	bad, multi bool // a 'bad' row, a 'multi' row
	// ids counted; joined rows holding a ledger / provider line (blank
	// lines included); the 'lines' row; blank lines of each side
	total, lRows, pRows, nLedger, nProvider, blankL, blankP int64
}

// summaryRows reads the rows of sql/summary.sql (or sql/rows_pass_summary.sql,
// the same columns) into a Summary, MatchRate left to the caller.
func (r *Reconciler) summaryRows(rows *sql.Rows, curs map[string]paybatch.Currency, byNo []currencyNo) (paybatch.Summary, summaryStats, error) {
	sum := paybatch.Summary{Categories: map[paybatch.Category]paybatch.CategoryTotals{},
		LedgerTotals: paybatch.Totals{}, ProviderTotals: paybatch.Totals{}, NoProviderAmount: paybatch.Totals{}}
	for _, c := range paybatch.Categories {
		sum.Categories[c] = paybatch.CategoryTotals{Totals: paybatch.Totals{}}
	}
	cur := func(no sql.NullInt64) (paybatch.Currency, bool) {
		if !no.Valid || no.Int64 < 1 || int(no.Int64) > len(byNo) {
			return paybatch.Currency{}, false
		}
		return curs[byNo[no.Int64-1].code], true
	}
	st := summaryStats{exact: true}
	for rows.Next() {
		var cat string
		var lc, pc, pcls sql.NullInt64
		var lsum, psum, nsum, ldsum minorSum // HUGEINT sums, checked (totals.go)
		var n, nl, np int64
		if err := rows.Scan(&cat, &lc, &pc, &pcls, &n, &lsum, &psum, &nl, &np, &nsum, &ldsum); err != nil {
			return sum, st, fmt.Errorf("reconcile: sql/summary.sql: %w", err)
		}
		if cat == "lines" { // the number of lines of each side
			st.nLedger, st.nProvider = nl, np
			continue
		}
		st.lRows += nl
		st.pRows += np
		if cat == "blank" { // counted as lines, nothing else
			st.blankL += nl
			st.blankP += np
			continue
		}
		if cat == "bad" || cat == "multi" {
			st.exact = false
			st.bad, st.multi = st.bad || cat == "bad", st.multi || cat == "multi"
			continue
		}
		c := paybatch.Category(cat)
		ct, ok := sum.Categories[c]
		if !ok {
			return sum, st, fmt.Errorf("reconcile: sql/summary.sql: unknown category %q", cat)
		}
		ct.Count += n
		st.total += n
		lcur, lok := cur(lc)
		pcur, pok := cur(pc)
		switch {
		case lok && lsum.Valid: // counted with its ledger line
			if err := r.addTotal(ct.Totals, lcur, lsum, kindLedger, cat+" total"); err != nil {
				return sum, st, err
			}
			// its lines expecting done (README: totals)
			if err := r.addTotal(sum.LedgerTotals, lcur, ldsum, kindLedger, "ledger total"); err != nil {
				return sum, st, err
			}
		case pok && psum.Valid: // no ledger line: counted with its provider line
			if err := r.addTotal(ct.Totals, pcur, psum, kindResults, cat+" total"); err != nil {
				return sum, st, err
			}
		}
		if lok { // done without a provider amount (voids)
			if err := r.addTotal(sum.NoProviderAmount, lcur, nsum, kindLedger, "total without a provider amount"); err != nil {
				return sum, st, err
			}
		}
		if pcls.Valid && pcls.Int64 == 1 && pok { // executed and done
			if err := r.addTotal(sum.ProviderTotals, pcur, psum, kindResults, "provider total"); err != nil {
				return sum, st, err
			}
		}
		sum.Categories[c] = ct
	}
	if err := rows.Err(); err != nil {
		return sum, st, fmt.Errorf("reconcile: sql/summary.sql: %w", err)
	}
	return sum, st, nil
}

// summarySQL is sql/summary.sql over every load: one SELECT of packed
// lines per file (packed.sql's query, packedFrom, or its view checked_<n>)
// on its side, and one for the journals' lines on the provider side.
func (r *Reconciler) summarySQL(view string) string {
	ok, padded := "ok", "false" // checked_<n> trims its ids
	if view == "packed" {
		// packed_<n> gives ids as written: one to trim sends the pass to
		// checked_<n> (sql/summary.sql)
		ok, padded = "good", "padded_id(id)"
	}
	var ledger, provider, ledgerCSV, providerCSV, nLedger, nProvider []string
	for _, s := range r.sources {
		// a blank line is joined too (as 'blank'), so that the lines of a
		// file are its records
		from := fmt.Sprintf("%s_%d", view, s.n)
		if view == "packed" {
			// packed.sql's query itself: no view to bind (packedFrom)
			from = s.packedFrom()
		}
		line := func(pack string) string {
			return fmt.Sprintf(`SELECT CASE WHEN %[1]s THEN id END AS id, CASE WHEN %[1]s THEN pack WHEN blank THEN 1125899906842624 END AS %[2]s FROM %[3]s`, ok, pack, from)
		}
		// a CSV read by DuckDB is counted where it is joined (ledger_csv,
		// provider_csv: one parse of the file); any other file by its
		// reader's own count (Parquet metadata, a table's row count)
		count := fmt.Sprintf(`(SELECT count(*) FROM src_%d)`, s.n)
		csv := s.duckCSV() && !s.copied
		switch {
		case s.kind == kindLedger && csv:
			ledgerCSV = append(ledgerCSV, line("lpack"))
		case s.kind == kindLedger:
			ledger = append(ledger, line("lpack"))
			nLedger = append(nLedger, count)
		case csv:
			providerCSV = append(providerCSV, line("ppack"))
		default:
			provider = append(provider, line("ppack"))
			nProvider = append(nProvider, count)
		}
	}
	if len(r.journals) > 0 {
		journal := strings.TrimSuffix(strings.TrimSpace(query("journal_pack")), ";")
		provider = append(provider, journal)
		nProvider = append(nProvider, "(SELECT count(*) FROM ("+journal+"))")
	}
	const sep = "\n    UNION ALL\n    "
	lines := func(selects []string, pack string) string {
		if len(selects) == 0 {
			return `SELECT NULL::VARCHAR AS id, NULL::BIGINT AS ` + pack + ` WHERE false`
		}
		return strings.Join(selects, sep)
	}
	return strings.NewReplacer(
		"/*ledger_csv*/", lines(ledgerCSV, "lpack"),
		"/*provider_csv*/", lines(providerCSV, "ppack"),
		"/*ledger*/", lines(ledger, "lpack"),
		"/*provider*/", lines(provider, "ppack"),
		"/*ledger_count*/", strings.Join(append(nLedger, "0"), " + "),
		"/*provider_count*/", strings.Join(append(nProvider, "0"), " + "),
		"/*padded*/", padded,
		// the key of each group's bits (per_key), not of each joined row
		"/*key*/", reconKeyOf("padded", "2", "over"),
		"/*summary_rows*/", strings.TrimSpace(query("summary_rows")),
	).Replace(query("summary"))
}

// reconKey is sql/recon_key.sql, the key rows_pass.sql computes for each
// joined row, with padded (the joined id is to trim) and bad (the category
// of a line with a problem); the amounts are compared with the ledger
// currency's tolerance.
func reconKey(padded, bad string) string {
	return reconKeyOf(padded, bad, "abs(lv - pv) > list_extract($tols::BIGINT[], lc)")
}

// reconKeyOf is sql/recon_key.sql with over (the amounts differ by more
// than the tolerance) given too: summary.sql computes the key once per
// group of joined rows, from a bit each row set.
func reconKeyOf(padded, bad, over string) string {
	return strings.NewReplacer("/*padded*/", padded, "/*bad*/", bad, "/*over*/", over).Replace(strings.TrimSpace(query("recon_key")))
}

func (r *Reconciler) journalLoads() []int64 {
	out := make([]int64, len(r.journals))
	for i, n := range r.journals {
		out[i] = int64(n)
	}
	return out
}

type currencyNo struct {
	code string
	tol  int64
}

// currencyNumbers returns every currency by code, and by number (index no-1)
// with its tolerance in minor units.
func (r *Reconciler) currencyNumbers(ctx context.Context, conn *sql.Conn) (map[string]paybatch.Currency, []currencyNo, error) {
	rows, err := conn.QueryContext(ctx, `SELECT code, no, tol_minor FROM currencies ORDER BY no`)
	if err != nil {
		return nil, nil, fmt.Errorf("reconcile: currencies: %w", err)
	}
	defer rows.Close()
	curs := map[string]paybatch.Currency{}
	var byNo []currencyNo
	for rows.Next() {
		var c currencyNo
		var no int
		if err := rows.Scan(&c.code, &no, &c.tol); err != nil {
			return nil, nil, fmt.Errorf("reconcile: currencies: %w", err)
		}
		if no != len(byNo)+1 {
			return nil, nil, fmt.Errorf("reconcile: currencies: number %d out of sequence", no)
		}
		cur, err := paybatch.ParseCurrency(c.code)
		if err != nil {
			return nil, nil, fmt.Errorf("reconcile: currencies: %w", err)
		}
		curs[c.code] = cur
		byNo = append(byNo, c)
	}
	return curs, byNo, rows.Err()
}

// reconSummary sums the categories of recon (the exact path).
func (r *Reconciler) reconSummary(ctx context.Context) (paybatch.Summary, error) {
	curs, err := r.currencies(ctx)
	if err != nil {
		return paybatch.Summary{}, err
	}
	sum := paybatch.Summary{Categories: map[paybatch.Category]paybatch.CategoryTotals{}}
	for _, c := range paybatch.Categories {
		sum.Categories[c] = paybatch.CategoryTotals{Totals: paybatch.Totals{}}
	}
	var total int64
	err = r.scan(ctx, query("counts"), func(rows *sql.Rows) error {
		var cat string
		var n int64
		if err := rows.Scan(&cat, &n); err != nil {
			return err
		}
		ct := sum.Categories[paybatch.Category(cat)]
		ct.Count = n
		sum.Categories[paybatch.Category(cat)] = ct
		total += n
		return nil
	})
	if err != nil {
		return paybatch.Summary{}, fmt.Errorf("reconcile: sql/counts.sql: %w", err)
	}
	var over error
	err = r.scan(ctx, query("category_totals"), func(rows *sql.Rows) error {
		var cat, code string
		var minor minorSum
		if err := rows.Scan(&cat, &code, &minor); err != nil {
			return err
		}
		if err := r.addTotal(sum.Categories[paybatch.Category(cat)].Totals, curs[code], minor, "", cat+" total"); err != nil && over == nil {
			over = err
		}
		return nil
	})
	if err != nil {
		return paybatch.Summary{}, fmt.Errorf("reconcile: sql/category_totals.sql: %w", err)
	}
	if over != nil {
		return paybatch.Summary{}, over
	}
	if sum.LedgerTotals, err = r.totals(ctx, "ledger_totals", curs, kindLedger, "ledger total"); err != nil {
		return paybatch.Summary{}, err
	}
	if sum.ProviderTotals, err = r.totals(ctx, "provider_totals", curs, kindResults, "provider total"); err != nil {
		return paybatch.Summary{}, err
	}
	if sum.NoProviderAmount, err = r.totals(ctx, "no_amount_totals", curs, kindLedger, "total without a provider amount"); err != nil {
		return paybatch.Summary{}, err
	}
	if total > 0 {
		sum.MatchRate = float64(sum.Categories[paybatch.CatMatched].Count) / float64(total)
	}
	return sum, nil
}

func (r *Reconciler) currencies(ctx context.Context) (map[string]paybatch.Currency, error) {
	out := map[string]paybatch.Currency{}
	err := r.scan(ctx, `SELECT code FROM currencies`, func(rows *sql.Rows) error {
		var code string
		if err := rows.Scan(&code); err != nil {
			return err
		}
		c, err := paybatch.ParseCurrency(code)
		out[code] = c
		return err
	})
	return out, err
}

// totals sums sql/<name>.sql's rows (currency, HUGEINT sum) per currency;
// a sum beyond int64 is an OverflowError naming the files of kind.
func (r *Reconciler) totals(ctx context.Context, name string, curs map[string]paybatch.Currency, kind fileKind, what string) (paybatch.Totals, error) {
	t := paybatch.Totals{}
	var over error
	err := r.scan(ctx, query(name), func(rows *sql.Rows) error {
		var code string
		var minor minorSum
		if err := rows.Scan(&code, &minor); err != nil {
			return err
		}
		if err := r.addTotal(t, curs[code], minor, kind, what); err != nil && over == nil {
			over = err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: sql/%s.sql: %w", name, err)
	}
	if over != nil {
		return nil, over
	}
	return t, nil
}

func (r *Reconciler) scan(ctx context.Context, q string, each func(*sql.Rows) error, args ...any) error {
	return scanWith(ctx, r.db, q, each, args...)
}

// ExportParquet writes one Parquet file per non-empty category into dir,
// named <category>.parquet, with DuckDB's COPY. Amounts are BIGINT minor
// units beside the currency code and its exponent (sql/export_category.sql).
// Each file is written to a temporary name and renamed into place, so a
// reader never sees half a file. It returns the paths written.
func (r *Reconciler) ExportParquet(ctx context.Context, dir string) ([]string, error) {
	ranges, err := r.ensureBuilt(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reconcile: parquet export: %w", err)
	}
	release, err := r.oneThread(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	defer r.readingMemory(ctx)()
	srcs, err := r.loadSources(ctx)
	if err != nil {
		return nil, err
	}
	q, loadArgs := exportCategoryQuery(srcs)
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: parquet export: %w", err)
	}
	defer conn.Close()
	var out []string
	for _, cr := range ranges {
		final := filepath.Join(dir, string(cr.cat)+".parquet")
		tmp := filepath.Join(dir, "."+string(cr.cat)+".parquet.tmp")
		args := append([]any{sql.Named("first", cr.first), sql.Named("last", cr.last), sql.Named("path", tmp)}, loadArgs...)
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			os.Remove(tmp)
			return out, fmt.Errorf("reconcile: parquet export %s: %w", final, err)
		}
		if err := writers.PlaceFile(tmp, final); err != nil {
			return out, fmt.Errorf("reconcile: parquet export: %w", err)
		}
		out = append(out, final)
	}
	return out, nil
}

// exportCategoryQuery returns sql/export_category.sql with a row's file and
// sheet named by its load: CASE src_load WHEN <load_no> THEN
// $load_file_<i> … END (and the same for the sheet) over srcs, the file
// loads (loadSources), in load order; and the arguments it needs. Without
// a file load (a journal alone) both stay NULL, as every line then names
// its own source.
func exportCategoryQuery(srcs map[int64]paybatch.Source) (string, []any) {
	nos := make([]int64, 0, len(srcs))
	for n := range srcs {
		nos = append(nos, n)
	}
	slices.Sort(nos)
	q := query("export_category")
	if len(nos) == 0 {
		return q, nil
	}
	var file, sheet strings.Builder
	file.WriteString("CASE src_load")
	sheet.WriteString("CASE src_load")
	args := make([]any, 0, 2*len(nos))
	for i, n := range nos {
		fmt.Fprintf(&file, " WHEN %d THEN $load_file_%d::VARCHAR", n, i)
		fmt.Fprintf(&sheet, " WHEN %d THEN $load_sheet_%d::VARCHAR", n, i)
		args = append(args, sql.Named(fmt.Sprintf("load_file_%d", i), srcs[n].File),
			sql.Named(fmt.Sprintf("load_sheet_%d", i), srcs[n].Sheet))
	}
	file.WriteString(" END")
	sheet.WriteString(" END")
	q = strings.Replace(q, "/*load_file*/NULL", file.String(), 1)
	q = strings.Replace(q, "/*load_sheet*/NULL", sheet.String(), 1)
	return q, args
}
