package postgres

import (
	"context"
	"iter"

	"github.com/jackc/pgx/v5"
)

// IDsFromOtherFiles returns, in journal order, up to limit of the ids among
// ids that the journal holds from a source file other than file, and how
// many such journal rows there are (as the DuckDB journal does): nothing
// but a drain of ids when the journal holds no row from another file,
// otherwise one COPY of the ids into a temporary table and one join.
func (j *Journal) IDsFromOtherFiles(ctx context.Context, file string, ids iter.Seq[string], limit int) ([]string, int, error) {
	var other bool
	if err := j.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM journal WHERE source_file <> $1)`, file).Scan(&other); err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	if !other {
		for range ids {
		}
		return nil, 0, nil
	}
	tx, err := j.pool.Begin(ctx)
	if err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE upload_ids (id text NOT NULL) ON COMMIT DROP`); err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	next, stop := iter.Pull(ids)
	defer stop()
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"upload_ids"}, []string{"id"}, pgx.CopyFromFunc(func() ([]any, error) {
		id, ok := next()
		if !ok {
			return nil, nil
		}
		return []any{id}, nil
	}))
	if err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE upload_ids`); err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	rows, err := tx.Query(ctx, `SELECT count(*) OVER (), merchant_transaction_id FROM journal
		WHERE source_file <> $1 AND merchant_transaction_id IN (SELECT id FROM upload_ids)
		ORDER BY source_file, source_row LIMIT $2`, file, max(limit, 1))
	if err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	var first []string
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&n, &id); err != nil {
			rows.Close()
			return nil, 0, j.wrap("ids", err)
		}
		if len(first) < limit {
			first = append(first, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	return first, n, j.wrap("ids", tx.Commit(ctx))
}
