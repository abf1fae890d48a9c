package reconcile

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
)

// Rows streams the reconciled rows of the given categories (all when none
// are given) in category precedence, then id, then line order. Duplicates
// and rejections give one row per line (see sql/recon_rows.sql). Stop early
// by breaking out of the loop; an error ends the sequence.
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
// caller stopped or an error ended the sequence. The page is read through
// the driver's own rows (database/sql's Scan cost as much again as DuckDB's
// query) and checked to be rows first to last, in that order. It is
// sql/rows_page.sql (the text columns packed into one value) unless fields
// (or r.fieldPages) asks for sql/rows_fields.sql (every column apart); a
// row whose text cannot be unpacked (a field holding a NUL byte) is read
// again alone, with fields.
func (r *Reconciler) rowsPage(ctx context.Context, curs map[string]paybatch.Currency, files map[int64]paybatch.Source,
	first, last int64, fields bool, yield func(paybatch.ReconRow, error) bool) bool {
	name, width, decode := "rows_page", 9, packedRow
	if fields || r.fieldPages {
		name, width, decode = "rows_fields", 17, pageRow
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		yield(paybatch.ReconRow{}, fmt.Errorf("reconcile: rows: %w", err))
		return false
	}
	defer conn.Close()
	stopped := false
	err = conn.Raw(func(dc any) error {
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
		next := first
		for {
			if err := rows.Next(v); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			if id, _ := v[0].(int64); id != next {
				return errRowOrder
			}
			row, ok, err := decode(v, curs, files)
			if err != nil {
				return fmt.Errorf("sql/%s.sql: row %d: %w", name, next, err)
			}
			if !ok {
				if row, err = r.fieldsRow(ctx, curs, files, next); err != nil {
					return err
				}
			}
			next++
			if !yield(row, nil) {
				stopped = true
				return nil
			}
		}
		if next != last+1 {
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

// packedRow is one row of sql/rows_page.sql as a ReconRow; false when its
// text does not hold exactly nine NUL bytes (a field holding one itself).
// The text fields are cut out of the one string the driver made: no copy
// and no allocation each.
func packedRow(v []driver.Value, curs map[string]paybatch.Currency, files map[int64]paybatch.Source) (paybatch.ReconRow, bool, error) {
	text, ok := v[1].(string)
	if !ok {
		return paybatch.ReconRow{}, false, fmt.Errorf("text %T", v[1])
	}
	nulls, ok := v[2].(uint8)
	if !ok {
		return paybatch.ReconRow{}, false, fmt.Errorf("nulls %T", v[2])
	}
	var p rowParts
	for i := range 9 {
		j := strings.IndexByte(text, 0)
		if j < 0 {
			return paybatch.ReconRow{}, false, nil
		}
		p.text[i], text = text[:j], text[j+1:]
	}
	if strings.IndexByte(text, 0) >= 0 {
		return paybatch.ReconRow{}, false, nil
	}
	p.text[9] = text
	p.nulls = nulls
	p.ledgerMinor, p.providerMinor, p.sourceRow, p.requested, p.provided, p.load = v[3], v[4], v[5], v[6], v[7], v[8]
	row, err := p.row(curs, files)
	return row, err == nil, err
}

// pageRow is one row of sql/rows_fields.sql as a ReconRow (always true).
func pageRow(v []driver.Value, curs map[string]paybatch.Currency, files map[int64]paybatch.Source) (paybatch.ReconRow, bool, error) {
	str := func(i int) string { s, _ := v[i].(string); return s }
	p := rowParts{
		text:        [10]string{str(1), str(2), str(4), str(5), str(7), str(8), str(9), str(10), str(11), str(12)},
		ledgerMinor: v[3], providerMinor: v[6], sourceRow: v[13], requested: v[14], provided: v[15], load: v[16],
	}
	for bit, i := range []int{7, 11, 12} { // provider currency, source file, source sheet
		if v[i] == nil {
			p.nulls |= 1 << bit
		}
	}
	row, err := p.row(curs, files)
	return row, err == nil, err
}

// rowParts is a row of recon_sorted as either page query gives it: its
// text columns (category, id, ledger currency and status, provider
// currency and status, provider id, reason, source file and sheet; NULL
// as ”), which of the three whose NULL Rows tells from ” are NULL
// (nullProviderCurrency, nullSourceFile, nullSourceSheet), and the rest as
// the driver gave them.
type rowParts struct {
	text  [10]string
	nulls uint8

	ledgerMinor, providerMinor, sourceRow, requested, provided, load driver.Value
}

const (
	nullProviderCurrency = 1 << iota
	nullSourceFile
	nullSourceSheet
)

// row is p as a ReconRow: a line loaded from a file is named by its load.
func (p *rowParts) row(curs map[string]paybatch.Currency, files map[int64]paybatch.Source) (paybatch.ReconRow, error) {
	f := &p.text
	row := paybatch.ReconRow{
		Category: paybatch.Category(f[0]), MerchantTxID: f[1],
		LedgerStatus: f[3], ProviderStatus: f[5], ProviderID: f[6], Reason: f[7],
		Source: paybatch.Source{File: f[8], Sheet: f[9]},
	}
	if n, ok := p.load.(int64); ok { // loaded from a file: named by its load
		if src, ok := files[n]; ok {
			if p.nulls&nullSourceFile != 0 {
				row.Source.File = src.File
			}
			if p.nulls&nullSourceSheet != 0 {
				row.Source.Sheet = src.Sheet
			}
		}
	}
	switch n := p.sourceRow.(type) {
	case int32:
		row.Source.Row = int(n)
	case int64:
		row.Source.Row = int(n)
	case nil:
	default:
		return row, fmt.Errorf("source_row %T", p.sourceRow)
	}
	row.RequestedDate, _ = p.requested.(time.Time)
	row.ProviderDate, _ = p.provided.(time.Time)
	if m, ok := p.ledgerMinor.(int64); ok {
		row.LedgerAmount = &paybatch.Money{Currency: curs[f[2]], Minor: m}
	}
	if m, ok := p.providerMinor.(int64); ok && p.nulls&nullProviderCurrency == 0 {
		row.ProviderAmount = &paybatch.Money{Currency: curs[f[4]], Minor: m}
	}
	return row, nil
}
