package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// DateCounts groups the rows that carry a collection/credit date (Direct
// Debit) by kind, requested date and the date the provider stored, as
// journal.DuckDB.DateCounts does, leaving out rows the provider refused or
// never will see (rejected, conflict, declined without a date).
func (j *Journal) DateCounts(ctx context.Context) ([]journal.DateCount, error) {
	rows, err := j.pool.Query(ctx, `SELECT provider, kind, collection_date, provider_date,
			state IN ('pending', 'sending', 'failed') AS open, count(*)
		FROM journal
		WHERE collection_date IS NOT NULL
		  AND (provider_date IS NOT NULL OR state IN ('pending', 'sending', 'failed', 'accepted', 'final'))
		GROUP BY 1, 2, 3, 4, 5 ORDER BY provider, kind, collection_date, provider_date NULLS LAST, open`)
	if err != nil {
		return nil, j.wrap("dates", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (journal.DateCount, error) {
		var c journal.DateCount
		var p, k string
		var pd *time.Time
		err := r.Scan(&p, &k, &c.Requested, &pd, &c.Open, &c.Rows)
		c.Provider, c.Kind = paybatch.Provider(p), paybatch.Kind(k)
		if pd != nil {
			c.ProviderDate = *pd
		}
		return c, err
	})
	return out, j.wrap("dates", err)
}
