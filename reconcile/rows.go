package reconcile

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
)

// Rows streams the reconciled rows of the given categories (all when none
// are given) in category precedence, then id, then line order. Duplicates
// and rejections give one row per line (see sql/recon_rows.sql). Stop early
// by breaking out of the loop; an error ends the sequence. A row's strings
// and amounts may share their memory with the rows read beside it (a block
// of a few hundred KB at most: chunkRows, moneyBlock), so a caller
// keeping a few rows for long copies what it keeps.
func (r *Reconciler) Rows(ctx context.Context, cats ...paybatch.Category) iter.Seq2[paybatch.ReconRow, error] {
	return func(yield func(paybatch.ReconRow, error) bool) {
		ranges, err := r.ensureBuilt(ctx)
		if err != nil {
			yield(paybatch.ReconRow{}, err)
			return
		}
		release, err := r.oneThread(ctx)
		if err != nil {
			yield(paybatch.ReconRow{}, err)
			return
		}
		defer release()
		defer r.readingMemory(ctx)()
		want := map[paybatch.Category]bool{}
		for _, c := range cats {
			want[c] = true
		}
		curs, err := r.currencies(ctx)
		if err != nil {
			yield(paybatch.ReconRow{}, err)
			return
		}
		files, err := r.loadSources(ctx)
		if err != nil {
			yield(paybatch.ReconRow{}, err)
			return
		}
		page := int64(r.pageRows)
		if page <= 0 {
			page = defaultPageRows
			// a streaming result holds no page in memory: one query a
			// category (each row group still scanned once), not one a
			// row group — every query is planned again over the view
			if r.chunkRoad(ctx) {
				page = math.MaxInt64 / 2
			}
		}
		// The pages are read, and their rows made, by a goroutine of their
		// own while the caller takes the rows already made: DuckDB's scan and
		// the driver's conversion on one core, the caller's writers on the
		// other. The rows cross in chunks; a few are in flight at a time.
		chunk := r.chunkRows
		if chunk <= 0 {
			chunk = defaultChunkRows
		}
		pctx, stop := context.WithCancel(ctx)
		chunks := make(chan []paybatch.ReconRow, chunksAhead) // rows made, a chunk at a time
		free := make(chan []paybatch.ReconRow, chunksAhead+2)
		var perr error    // why the goroutine stopped; read once chunks is closed
		var complete bool // every row was sent
		go func() {
			defer close(chunks)
			buf := <-free
			send := func(c []paybatch.ReconRow) bool {
				select {
				case chunks <- c:
					return true
				case <-pctx.Done():
					return false
				}
			}
			emit := func(row paybatch.ReconRow, err error) bool {
				if err != nil {
					perr = err
					return false
				}
				buf = append(buf, row)
				if len(buf) < chunk {
					return true
				}
				if !send(buf) {
					return false
				}
				select {
				case buf = <-free:
				case <-pctx.Done():
					return false
				}
				return true
			}
			for _, cr := range ranges {
				if len(cats) > 0 && !want[cr.cat] {
					continue
				}
				// pages end at multiples of page: at the end of a row
				// group of recon_sorted (defaultPageRows)
				for first := cr.first; first <= cr.last; {
					last := min((first/page+1)*page-1, cr.last)
					if !r.rowsPage(pctx, curs, files, first, last, false, emit) {
						return
					}
					first = last + 1
				}
			}
			if len(buf) > 0 && !send(buf) {
				return
			}
			complete = true
		}()
		for range chunksAhead + 2 {
			free <- make([]paybatch.ReconRow, 0, chunk)
		}
		defer func() {
			stop()
			for range chunks { // the goroutine has ended when chunks is closed
			}
		}()
		for c := range chunks {
			for _, row := range c {
				if !yield(row, nil) {
					return
				}
			}
			clear(c) // no strings kept alive by a reused chunk
			free <- c[:0]
		}
		switch {
		case perr != nil:
			yield(paybatch.ReconRow{}, perr)
		case !complete: // stopped by ctx between two pages
			err := ctx.Err()
			if err == nil {
				err = context.Canceled
			}
			yield(paybatch.ReconRow{}, fmt.Errorf("reconcile: rows: %w", err))
		}
	}
}

// How many rows cross from Rows' reading goroutine to the caller at a
// time, and how many chunks may wait made: enough that neither side waits
// for the other's every row, few enough that the rows in flight stay a few
// MB (≈ 300 bytes a row with its strings).
const (
	defaultChunkRows = 2048
	chunksAhead      = 4
)

// defaultPageRows is how many rows Rows asks DuckDB for at a time (the
// driver holds a query's whole result in memory before the first row):
// DuckDB's row group (its default row_group_size), and pages end where row
// groups end. A page scans each row group it touches whole, rowids outside
// it included: with pages of 65,536 rows every row group was scanned about
// twice (1M ids, the pages read through the driver: 0.66 -> 0.58-0.60
// cpu-s; #19, BENCHMARKS.md session 10).
const defaultPageRows = 122880

// loadSources returns the file and sheet of every file load by its number:
// a row loaded from a file names its load (recon_sorted.src_load), not the
// file (sql/recon_rows.sql).
func (r *Reconciler) loadSources(ctx context.Context) (map[int64]paybatch.Source, error) {
	out := map[int64]paybatch.Source{}
	err := r.scan(ctx, `SELECT load_no, source_file, source_sheet FROM loads`, func(rows *sql.Rows) error {
		var n int64
		var s paybatch.Source
		err := rows.Scan(&n, &s.File, &s.Sheet)
		out[n] = s
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: loads: %w", err)
	}
	return out, nil
}

// errRowOrder is a page of recon_sorted that did not come back whole and in
// rowid order (sql/rows_page.sql relies on DuckDB keeping a table scan in
// insertion order).
var errRowOrder = errors.New("reconcile: rows: recon_sorted did not come back in its order")

// rowsPage yields the rows first to last of recon_sorted; false when the
// caller stopped or an error ended the sequence. The page is checked to be
// rows first to last, in that order. It is read through DuckDB's C API
// (sql/rows_fields.sql a chunk at a time: chunkPage, rows_chunks.go) when
// the driver's connection gives us its C connection (chunkConn), unless
// r.driverPages or r.fieldPages (the tests' references) or fields ask for
// the driver's own rows: then sql/rows_page.sql (the text columns packed
// into one value) unless fields (or r.fieldPages) asks for
// sql/rows_fields.sql (every column apart); a row whose packed text cannot
// be unpacked (a field holding a NUL byte) is read again alone, with
// fields. (database/sql's Scan cost as much again as DuckDB's query.)
func (r *Reconciler) rowsPage(ctx context.Context, curs map[string]paybatch.Currency, files map[int64]paybatch.Source,
	first, last int64, fields bool, yield func(paybatch.ReconRow, error) bool) bool {
	name := "rows_page"
	if fields || r.fieldPages {
		name = "rows_fields"
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		yield(paybatch.ReconRow{}, fmt.Errorf("reconcile: rows: %w", err))
		return false
	}
	defer conn.Close()
	stopped := false
	next := first
	var amounts []paybatch.Money // the rows' amounts, allocated a block at a time
	lk := rowLookups{curs: curs, files: files}
	// each takes the page's rows in turn: ok false when p's text could not
	// be unpacked. false when the caller stopped.
	each := func(id int64, p *rowParts, ok bool) (bool, error) {
		if id != next {
			return false, errRowOrder
		}
		var row paybatch.ReconRow
		if ok {
			if len(amounts) < 2 {
				amounts = make([]paybatch.Money, moneyBlock)
			}
			row, amounts = p.row(&lk, amounts)
		} else {
			var err error
			if row, err = r.fieldsRow(ctx, curs, files, id); err != nil {
				return false, err
			}
		}
		next++
		if !yield(row, nil) {
			stopped = true
			return false, nil
		}
		return true, nil
	}
	err = conn.Raw(func(dc any) error {
		if conn, ok := chunkConn(dc); ok && !r.driverPages && !r.fieldPages {
			if err := chunkPage(ctx, conn, query("rows_fields"), first, last, each); err != nil {
				return fmt.Errorf("sql/rows_fields.sql: %w", err)
			}
		} else if err := driverPage(ctx, dc, name, first, last, each); err != nil {
			return err
		}
		if !stopped && next != last+1 {
			return errRowOrder
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil { // DuckDB's own "Interrupted!" says less
			err = ctx.Err()
		}
		yield(paybatch.ReconRow{}, fmt.Errorf("reconcile: rows: %w", err))
		return false
	}
	return !stopped
}

// chunkRoad says whether rowsPage reads through DuckDB's C API (chunkConn
// reaches the driver's C connection, and no test asks for the driver's
// rows).
func (r *Reconciler) chunkRoad(ctx context.Context) bool {
	if r.driverPages || r.fieldPages {
		return false
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	ok := false
	_ = conn.Raw(func(dc any) error {
		_, ok = chunkConn(dc)
		return nil
	})
	return ok
}

// driverPage reads page first to last of sql/<name>.sql through the
// driver's rows on driver connection dc, and hands each row to each until
// it returns false.
func driverPage(ctx context.Context, dc any, name string, first, last int64, each func(int64, *rowParts, bool) (bool, error)) error {
	width, decode := 9, packedParts
	if name == "rows_fields" {
		width, decode = 17, fieldParts
	}
	q, ok := dc.(driver.QueryerContext)
	if !ok {
		return fmt.Errorf("driver %T cannot query", dc)
	}
	rows, err := q.QueryContext(ctx, query(name), []driver.NamedValue{
		{Name: "first", Ordinal: 1, Value: first}, {Name: "last", Ordinal: 2, Value: last}})
	if err != nil {
		return fmt.Errorf("sql/%s.sql: %w", name, err)
	}
	defer rows.Close()
	v := make([]driver.Value, len(rows.Columns()))
	if len(v) != width {
		return fmt.Errorf("sql/%s.sql: %d columns, want %d", name, len(v), width)
	}
	for {
		if err := rows.Next(v); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		id, _ := v[0].(int64)
		var p rowParts
		ok, err := decode(v, &p)
		if err != nil {
			return fmt.Errorf("sql/%s.sql: row %d: %w", name, id, err)
		}
		if more, err := each(id, &p, ok); !more || err != nil {
			return err
		}
	}
}

// fieldsRow reads row id of recon_sorted with its columns apart
// (sql/rows_fields.sql), on a connection of its own: for a row whose
// packed text cannot be unpacked.
func (r *Reconciler) fieldsRow(ctx context.Context, curs map[string]paybatch.Currency, files map[int64]paybatch.Source, id int64) (paybatch.ReconRow, error) {
	var row paybatch.ReconRow
	var rerr error
	r.rowsPage(ctx, curs, files, id, id, true, func(one paybatch.ReconRow, err error) bool {
		row, rerr = one, err
		return true
	})
	return row, rerr
}

// packedParts fills p from one row of sql/rows_page.sql; false when its
// text does not hold exactly nine NUL bytes (a field holding one itself).
// The text fields are cut out of the one string the driver made: no copy
// and no allocation each.
func packedParts(v []driver.Value, p *rowParts) (bool, error) {
	text, ok := v[1].(string)
	if !ok {
		return false, fmt.Errorf("text %T", v[1])
	}
	nulls, ok := v[2].(uint8)
	if !ok {
		return false, fmt.Errorf("nulls %T", v[2])
	}
	if !p.unpack(text) {
		return false, nil
	}
	p.nulls = nulls
	return true, p.values(v[3], v[4], v[5], v[6], v[7], v[8])
}

// unpack cuts rows_page.sql's text column into p's ten text fields (no
// copy); false when it does not hold exactly nine NUL bytes.
func (p *rowParts) unpack(text string) bool {
	for i := range 9 {
		j := strings.IndexByte(text, 0)
		if j < 0 {
			return false
		}
		p.text[i], text = text[:j], text[j+1:]
	}
	if strings.IndexByte(text, 0) >= 0 {
		return false
	}
	p.text[9] = text
	return true
}

// fieldParts fills p from one row of sql/rows_fields.sql (always true).
func fieldParts(v []driver.Value, p *rowParts) (bool, error) {
	str := func(i int) string { s, _ := v[i].(string); return s }
	p.text = [10]string{str(1), str(2), str(4), str(5), str(7), str(8), str(9), str(10), str(11), str(12)}
	for bit, i := range []int{7, 11, 12} { // provider currency, source file, source sheet
		if v[i] == nil {
			p.nulls |= 1 << bit
		}
	}
	return true, p.values(v[3], v[6], v[13], v[14], v[15], v[16])
}

// rowParts is a row of recon_sorted as a page query gives it: its text
// columns (category, id, ledger currency and status, provider currency and
// status, provider id, reason, source file and sheet; NULL as ""), which of
// the three whose NULL Rows tells from "" are NULL (nullProviderCurrency,
// nullSourceFile, nullSourceSheet), and the rest typed, with which of them
// are present (has*). The driver's values (packedParts, fieldParts) and
// the C API's chunks (chunkRows, rows_chunks.go) both fill one.
type rowParts struct {
	text  [10]string
	nulls uint8
	has   uint8

	ledgerMinor, providerMinor, sourceRow, load int64
	requested, provided                         time.Time
}

const (
	nullProviderCurrency = 1 << iota
	nullSourceFile
	nullSourceSheet
)

const (
	hasLedgerMinor = 1 << iota
	hasProviderMinor
	hasSourceRow
	hasLoad
)

// values fills p's typed columns from the driver's values of
// ledger_amount_minor, provider_amount_minor, source_row, requested_date,
// provider_date and src_load.
func (p *rowParts) values(ledgerMinor, providerMinor, sourceRow, requested, provided, load driver.Value) error {
	if m, ok := ledgerMinor.(int64); ok {
		p.ledgerMinor, p.has = m, p.has|hasLedgerMinor
	}
	if m, ok := providerMinor.(int64); ok {
		p.providerMinor, p.has = m, p.has|hasProviderMinor
	}
	if n, ok := load.(int64); ok {
		p.load, p.has = n, p.has|hasLoad
	}
	switch n := sourceRow.(type) {
	case int32:
		p.sourceRow, p.has = int64(n), p.has|hasSourceRow
	case int64:
		p.sourceRow, p.has = n, p.has|hasSourceRow
	case nil:
	default:
		return fmt.Errorf("source_row %T", sourceRow)
	}
	p.requested, _ = requested.(time.Time)
	p.provided, _ = provided.(time.Time)
	return nil
}

// moneyBlock is how many amounts Rows allocates at a time (two a row at
// most): an allocation per 1,024 rows instead of up to two per row; a row
// kept keeps its block (24 KB).
const moneyBlock = 2048

// rowLookups are the currencies by code and the file loads by number a
// page's rows are named from, with the last currency and load looked up:
// a page's rows mostly repeat them (two map lookups a row, and a third
// for the load, were ≈ 0.02 cpu-s per 1M rows).
type rowLookups struct {
	curs  map[string]paybatch.Currency
	files map[int64]paybatch.Source

	code  string
	cur   paybatch.Currency
	curOK bool

	load            int64
	src             paybatch.Source
	srcOK, srcFound bool
}

// currency is curs[code].
func (l *rowLookups) currency(code string) paybatch.Currency {
	if !l.curOK || code != l.code {
		l.code, l.cur, l.curOK = code, l.curs[code], true
	}
	return l.cur
}

// file is files[load].
func (l *rowLookups) file(load int64) (paybatch.Source, bool) {
	if !l.srcOK || load != l.load {
		l.src, l.srcFound = l.files[load]
		l.load, l.srcOK = load, true
	}
	return l.src, l.srcFound
}

// row is p as a ReconRow, and what is left of amounts: a line loaded from
// a file is named by its load (lk); its amounts are the first of amounts
// (at least two).
func (p *rowParts) row(lk *rowLookups, amounts []paybatch.Money) (paybatch.ReconRow, []paybatch.Money) {
	f := &p.text
	row := paybatch.ReconRow{
		Category: paybatch.Category(f[0]), MerchantTxID: f[1],
		LedgerStatus: f[3], ProviderStatus: f[5], ProviderID: f[6], Reason: f[7],
		Source:        paybatch.Source{File: f[8], Sheet: f[9]},
		RequestedDate: p.requested, ProviderDate: p.provided,
	}
	if p.has&hasLoad != 0 { // loaded from a file: named by its load
		if src, ok := lk.file(p.load); ok {
			if p.nulls&nullSourceFile != 0 {
				row.Source.File = src.File
			}
			if p.nulls&nullSourceSheet != 0 {
				row.Source.Sheet = src.Sheet
			}
		}
	}
	if p.has&hasSourceRow != 0 {
		row.Source.Row = int(p.sourceRow)
	}
	if p.has&hasLedgerMinor != 0 {
		amounts[0] = paybatch.Money{Currency: lk.currency(f[2]), Minor: p.ledgerMinor}
		row.LedgerAmount, amounts = &amounts[0], amounts[1:]
	}
	if p.has&hasProviderMinor != 0 && p.nulls&nullProviderCurrency == 0 {
		amounts[0] = paybatch.Money{Currency: lk.currency(f[4]), Minor: p.providerMinor}
		row.ProviderAmount, amounts = &amounts[0], amounts[1:]
	}
	return row, amounts
}
