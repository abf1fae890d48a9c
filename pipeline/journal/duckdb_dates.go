package journal

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/paybatch/paybatch"
)

// DateCount counts the journal's rows (latest states) that asked for one
// collection/credit date (Direct Debit): the date the provider stored
// (zero until it answered), and whether the rows are still to be sent.
type DateCount struct {
	Provider     paybatch.Provider
	Kind         paybatch.Kind
	Requested    time.Time // the collection/credit date asked for
	ProviderDate time.Time // the one the provider stored; zero: none yet
	// Open: rows not yet answered (pending, sending, failed): a run sends
	// them, so the date they will get is still to be decided.
	Open bool
	Rows int
}

// DateCounts groups the rows that carry a collection/credit date by kind,
// requested date and provider date, leaving out rows the provider refused
// or never will see (rejected, conflict, declined without a date).
func (j *DuckDB) DateCounts(ctx context.Context) ([]DateCount, error) {
	rs, err := j.db.QueryContext(ctx, `SELECT provider, kind, collection_date, provider_date,
			state IN ('pending', 'sending', 'failed') AS open, count(*)
		FROM journal_export
		WHERE collection_date IS NOT NULL
		  AND (provider_date IS NOT NULL OR state IN ('pending', 'sending', 'failed', 'accepted', 'final'))
		GROUP BY ALL ORDER BY provider, kind, collection_date, provider_date NULLS LAST, open`)
	if err != nil {
		return nil, fmt.Errorf("journal: dates: %w", err)
	}
	defer rs.Close()
	var out []DateCount
	for rs.Next() {
		var c DateCount
		var p, k string
		var pd sql.NullTime
		if err := rs.Scan(&p, &k, &c.Requested, &pd, &c.Open, &c.Rows); err != nil {
			return nil, fmt.Errorf("journal: dates: %w", err)
		}
		c.Provider, c.Kind, c.ProviderDate = paybatch.Provider(p), paybatch.Kind(k), pd.Time
		out = append(out, c)
	}
	return out, rs.Err()
}
