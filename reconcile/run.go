package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"os"
	"path/filepath"

	"github.com/paybatch/paybatch"
)

// Run categorises every id (sql/categorize.sql) and returns the counts, the
// per-category totals per currency, the match rate and the ledger and
// provider totals. It needs at least one ledger line.
func (r *Reconciler) Run(ctx context.Context) (paybatch.Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ledgers == 0 {
		return paybatch.Summary{}, fmt.Errorf("%w: no ledger loaded; reconciliation needs the merchant's ledger", paybatch.ErrUnusableFile)
	}
	// recon is read by ORDER BY queries only, so it may be built unordered.
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return paybatch.Summary{}, fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	for _, q := range []string{`SET preserve_insertion_order = false`, query("categorize"),
		`SET preserve_insertion_order = true`, query("recon_rows")} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), `SET preserve_insertion_order = true`)
			return paybatch.Summary{}, fmt.Errorf("reconcile: categorise: %w", err)
		}
	}
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
	err = r.scan(ctx, query("category_totals"), func(rows *sql.Rows) error {
		var cat, code string
		var minor int64
		if err := rows.Scan(&cat, &code, &minor); err != nil {
			return err
		}
		return sum.Categories[paybatch.Category(cat)].Totals.Add(paybatch.Money{Currency: curs[code], Minor: minor})
	})
	if err != nil {
		return paybatch.Summary{}, fmt.Errorf("reconcile: sql/category_totals.sql: %w", err)
	}
	if sum.LedgerTotals, err = r.totals(ctx, "ledger_totals", curs); err != nil {
		return paybatch.Summary{}, err
	}
	if sum.ProviderTotals, err = r.totals(ctx, "provider_totals", curs); err != nil {
		return paybatch.Summary{}, err
	}
	if total > 0 {
		sum.MatchRate = float64(sum.Categories[paybatch.CatMatched].Count) / float64(total)
	}
	r.ran = true
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

func (r *Reconciler) totals(ctx context.Context, name string, curs map[string]paybatch.Currency) (paybatch.Totals, error) {
	t := paybatch.Totals{}
	err := r.scan(ctx, query(name), func(rows *sql.Rows) error {
		var code string
		var minor int64
		if err := rows.Scan(&code, &minor); err != nil {
			return err
		}
		return t.Add(paybatch.Money{Currency: curs[code], Minor: minor})
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: sql/%s.sql: %w", name, err)
	}
	return t, nil
}

func (r *Reconciler) scan(ctx context.Context, q string, each func(*sql.Rows) error, args ...any) error {
	rows, err := r.db.QueryContext(ctx, q, args...)
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

// Rows streams the reconciled rows of the given categories (all when none
// are given) in category precedence, then id, then line order. Duplicates
// and rejections give one row per line (see sql/recon_rows.sql). Stop early
// by breaking out of the loop; an error ends the sequence.
func (r *Reconciler) Rows(ctx context.Context, cats ...paybatch.Category) iter.Seq2[paybatch.ReconRow, error] {
	return func(yield func(paybatch.ReconRow, error) bool) {
		r.mu.Lock()
		ran := r.ran
		r.mu.Unlock()
		if !ran {
			yield(paybatch.ReconRow{}, ErrNotRun)
			return
		}
		if len(cats) == 0 {
			cats = paybatch.Categories
		}
		names := make([]string, len(cats))
		for i, c := range cats {
			names[i] = string(c)
		}
		curs, err := r.currencies(ctx)
		if err != nil {
			yield(paybatch.ReconRow{}, err)
			return
		}
		rows, err := r.db.QueryContext(ctx, query("rows_select"), sql.Named("categories", names))
		if err != nil {
			yield(paybatch.ReconRow{}, fmt.Errorf("reconcile: sql/rows_select.sql: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var (
				cat, id                                   string
				lMinor, pMinor                            sql.NullInt64
				lCur, lStatus, pCur, pStatus, pID, reason sql.NullString
				srcFile, srcSheet                         sql.NullString
				srcRow                                    sql.NullInt64
			)
			if err := rows.Scan(&cat, &id, &lMinor, &lCur, &lStatus, &pMinor, &pCur, &pStatus, &pID, &reason,
				&srcFile, &srcSheet, &srcRow); err != nil {
				yield(paybatch.ReconRow{}, fmt.Errorf("reconcile: rows: %w", err))
				return
			}
			row := paybatch.ReconRow{
				Category: paybatch.Category(cat), MerchantTxID: id,
				LedgerStatus: lStatus.String, ProviderStatus: pStatus.String,
				ProviderID: pID.String, Reason: reason.String,
				Source: paybatch.Source{File: srcFile.String, Sheet: srcSheet.String, Row: int(srcRow.Int64)},
			}
			if lMinor.Valid {
				row.LedgerAmount = &paybatch.Money{Currency: curs[lCur.String], Minor: lMinor.Int64}
			}
			if pMinor.Valid && pCur.Valid {
				row.ProviderAmount = &paybatch.Money{Currency: curs[pCur.String], Minor: pMinor.Int64}
			}
			if !yield(row, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(paybatch.ReconRow{}, fmt.Errorf("reconcile: rows: %w", err))
		}
	}
}

// ExportParquet writes one Parquet file per non-empty category into dir,
// named <category>.parquet, with DuckDB's COPY. Amounts are BIGINT minor
// units beside the currency code and its exponent (sql/export_category.sql).
// Each file is written to a temporary name and renamed into place, so a
// reader never sees half a file. It returns the paths written.
func (r *Reconciler) ExportParquet(ctx context.Context, dir string) ([]string, error) {
	r.mu.Lock()
	ran := r.ran
	r.mu.Unlock()
	if !ran {
		return nil, ErrNotRun
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reconcile: parquet export: %w", err)
	}
	counts := map[string]int64{}
	err := r.scan(ctx, query("counts"), func(rows *sql.Rows) error {
		var c string
		var n int64
		err := rows.Scan(&c, &n)
		counts[c] = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: parquet export: %w", err)
	}
	var out []string
	for _, c := range paybatch.Categories {
		if counts[string(c)] == 0 {
			continue
		}
		final := filepath.Join(dir, string(c)+".parquet")
		tmp := filepath.Join(dir, "."+string(c)+".parquet.tmp")
		if _, err := r.db.ExecContext(ctx, query("export_category"),
			sql.Named("category", string(c)), sql.Named("path", tmp)); err != nil {
			os.Remove(tmp)
			return out, fmt.Errorf("reconcile: parquet export %s: %w", final, err)
		}
		if err := os.Rename(tmp, final); err != nil {
			os.Remove(tmp)
			return out, fmt.Errorf("reconcile: parquet export: %w", err)
		}
		out = append(out, final)
	}
	return out, nil
}
