package journal

import (
	"context"
	"database/sql/driver"
	"fmt"
	"iter"

	"github.com/duckdb/duckdb-go/v2"
)

// IDsFromOtherFiles returns, in journal order, up to limit of the ids among
// ids that the journal holds from a source file other than file, and how
// many such journal rows there are — rows already journaled (whatever their
// state) that a new batch would repeat. The answer is the journal's as of
// the call.
//
// The ids are consumed as they come (an upload's reader yields them while
// it reads): when the journal holds no row from another file — a fresh
// journal, or one that has only ever sent this file — they are drained and
// nothing else is done; otherwise they are bulk-loaded into a temporary
// table through an Appender and joined with the journal once.
func (j *DuckDB) IDsFromOtherFiles(ctx context.Context, file string, ids iter.Seq[string], limit int) (first []string, n int, err error) {
	var other bool
	if err := j.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM journal WHERE source_file <> ?)`, file).Scan(&other); err != nil {
		return nil, 0, fmt.Errorf("journal: ids: %w", err)
	}
	if !other {
		for range ids {
		}
		return nil, 0, nil
	}
	conn, err := j.db.Conn(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("journal: ids: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE upload_ids (id VARCHAR NOT NULL)`); err != nil {
		return nil, 0, fmt.Errorf("journal: ids: %w", err)
	}
	defer func() {
		// The connection goes back to the pool: its temporary table must not.
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp.upload_ids`); derr != nil && err == nil {
			err = fmt.Errorf("journal: ids: %w", derr)
		}
	}()
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "", "upload_ids")
		if err != nil {
			return err
		}
		for id := range ids {
			if err = a.AppendRow(id); err != nil {
				break
			}
		}
		if cerr := a.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("journal: ids: %w", err)
	}
	// The count is a scalar subquery over the materialised matches, not
	// count(*) OVER (): DuckDB 1.5.5's window operator fails about one such
	// query in 200 here with "INTERNAL Error: Attempted to access index 0
	// within vector of size 0" (WindowLocalSourceState::Finalize), which
	// also invalidates the database (TestIDsFromOtherFilesRepeated).
	rs, err := conn.QueryContext(ctx, `WITH m AS MATERIALIZED (SELECT merchant_transaction_id, source_file, source_row FROM journal
		WHERE source_file <> ? AND merchant_transaction_id IN (SELECT id FROM temp.upload_ids))
		SELECT (SELECT count(*) FROM m), merchant_transaction_id FROM m
		ORDER BY source_file, source_row LIMIT ?`, file, max(limit, 1))
	if err != nil {
		return nil, 0, fmt.Errorf("journal: ids: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id string
		if err := rs.Scan(&n, &id); err != nil {
			return nil, 0, fmt.Errorf("journal: ids: %w", err)
		}
		if len(first) < limit {
			first = append(first, id)
		}
	}
	if err := rs.Err(); err != nil {
		return nil, 0, fmt.Errorf("journal: ids: %w", err)
	}
	return first, n, nil
}
