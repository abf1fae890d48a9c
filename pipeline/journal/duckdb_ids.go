package journal

import (
	"context"
	"fmt"
	"strings"
)

// IDsFromOtherFiles returns, in journal order, up to limit of the ids among
// ids that the journal holds from a source file other than file, and how
// many there are — rows already journaled (whatever their state) that a
// new batch would repeat. The ids travel as one parameter (readers refuse
// control characters in ids), because binding thousands of parameters
// costs more than the query.
func (j *DuckDB) IDsFromOtherFiles(ctx context.Context, file string, ids []string, limit int) ([]string, int, error) {
	if len(ids) == 0 {
		return nil, 0, nil
	}
	rs, err := j.db.QueryContext(ctx, `SELECT merchant_transaction_id FROM journal
		WHERE source_file <> ? AND merchant_transaction_id IN (SELECT unnest(string_split(?, chr(31))))
		ORDER BY source_file, source_row`, file, strings.Join(ids, "\x1f"))
	if err != nil {
		return nil, 0, fmt.Errorf("journal: ids: %w", err)
	}
	defer rs.Close()
	var out []string
	n := 0
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, 0, fmt.Errorf("journal: ids: %w", err)
		}
		if n++; len(out) < limit {
			out = append(out, id)
		}
	}
	return out, n, rs.Err()
}
