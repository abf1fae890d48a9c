package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// Counts groups the journal by provider, kind, state and outcome.
func (j *Journal) Counts(ctx context.Context) ([]journal.StateCount, error) {
	rows, err := j.pool.Query(ctx, `SELECT provider, kind, state, outcome, count(*) FROM journal
		GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`)
	if err != nil {
		return nil, j.wrap("counts", err)
	}
	out, err := pgx.CollectRows(rows, func(sc pgx.CollectableRow) (journal.StateCount, error) {
		var c journal.StateCount
		var p, k, s, o string
		err := sc.Scan(&p, &k, &s, &o, &c.Rows)
		c.Provider, c.Kind, c.State, c.Outcome = paybatch.Provider(p), paybatch.Kind(k), paybatch.State(s), paybatch.Outcome(o)
		return c, err
	})
	return out, j.wrap("counts", err)
}

// Rows returns the rows matching q, ordered by source file, sheet, row and
// key.
func (j *Journal) Rows(ctx context.Context, q journal.Query) ([]*journal.Row, error) {
	where, args := queryWhere(q)
	if q.SourceFile != "" && (q.AfterRow > 0 || q.ThroughRow > 0 || q.Limit > 0) {
		sheet, one, err := j.oneSheet(ctx, q.SourceFile)
		if err != nil {
			return nil, err
		}
		if one && q.Limit > 0 && (len(q.States) > 0 || len(q.Outcomes) > 0) && q.MerchantTxID == "" && !q.Attention {
			return j.statePage(ctx, q, sheet)
		}
		if one {
			args = append(args, sheet)
			where += fmt.Sprintf(` AND j.source_sheet = $%d`, len(args))
		}
	}
	if q.AfterRow > 0 {
		args = append(args, q.AfterRow)
		where += fmt.Sprintf(` AND j.source_row > $%d`, len(args))
	}
	if q.ThroughRow > 0 {
		args = append(args, q.ThroughRow)
		where += fmt.Sprintf(` AND j.source_row <= $%d`, len(args))
	}
	sql := `SELECT ` + selectColumns + ` FROM journal j WHERE ` + where + ` ORDER BY j.source_file, j.source_sheet, j.source_row, j.key`
	if q.Limit > 0 {
		sql += fmt.Sprintf(` LIMIT %d`, q.Limit)
	}
	rows, err := j.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, j.wrap("read", err)
	}
	out, err := pgx.CollectRows(rows, scanRow)
	return out, j.wrap("read", err)
}

// statePage reads a keyset page of one sheet of one file filtered by
// state (and outcome) as ranges of the journal_source_state index
// (source_file, source_sheet, state, outcome, source_row): the (state,
// outcome) pairs the sheet holds are found by skipping through the index
// (one probe per pair), and each pair the filter keeps gives its first
// Limit rows after AfterRow in order; the page is the first Limit of
// their union. Its cost is a few index probes per pair, however sparse
// the filter — where the journal_source walk fetched every row of the
// file after AfterRow to test its state (seconds for a million-row file
// with no row in the filter).
func (j *Journal) statePage(ctx context.Context, q journal.Query, sheet string) ([]*journal.Row, error) {
	args := []any{q.SourceFile, sheet, q.AfterRow}
	var keep string
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, s := range q.States {
			states[i] = string(s)
		}
		args = append(args, states)
		keep += fmt.Sprintf(` AND state = ANY($%d)`, len(args))
	}
	if len(q.Outcomes) > 0 {
		outs := make([]string, len(q.Outcomes))
		for i, o := range q.Outcomes {
			outs[i] = string(o)
		}
		args = append(args, outs)
		keep += fmt.Sprintf(` AND outcome = ANY($%d)`, len(args))
	}
	through := ""
	if q.ThroughRow > 0 {
		args = append(args, q.ThroughRow)
		through = fmt.Sprintf(` AND j.source_row <= $%d`, len(args))
	}
	sql := fmt.Sprintf(`WITH RECURSIVE pairs(state, outcome) AS (
		(SELECT state, outcome FROM journal WHERE source_file = $1 AND source_sheet = $2 ORDER BY state, outcome LIMIT 1)
		UNION ALL
		SELECT n.state, n.outcome FROM pairs p CROSS JOIN LATERAL (SELECT state, outcome FROM journal
			WHERE source_file = $1 AND source_sheet = $2 AND (state, outcome) > (p.state, p.outcome) ORDER BY state, outcome LIMIT 1) n)
	SELECT %[1]s FROM (SELECT * FROM pairs WHERE true%[2]s) p CROSS JOIN LATERAL (
		SELECT %[1]s FROM journal j WHERE j.source_file = $1 AND j.source_sheet = $2 AND j.state = p.state AND j.outcome = p.outcome
			AND j.source_row > $3%[3]s ORDER BY j.source_row, j.key LIMIT %[4]d) j
	ORDER BY j.source_row, j.key LIMIT %[4]d`, selectColumns, keep, through, q.Limit)
	rows, err := j.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, j.wrap("read", err)
	}
	out, err := pgx.CollectRows(rows, scanRow)
	return out, j.wrap("read", err)
}

// CountRows counts the rows matching q.
func (j *Journal) CountRows(ctx context.Context, q journal.Query) (int, error) {
	where, args := queryWhere(q)
	var n int
	err := j.pool.QueryRow(ctx, `SELECT count(*) FROM journal j WHERE `+where, args...).Scan(&n)
	return n, j.wrap("count", err)
}

// CountStates groups the rows matching q by state and outcome (one scan).
func (j *Journal) CountStates(ctx context.Context, q journal.Query) ([]journal.StateCount, error) {
	where, args := queryWhere(q)
	rows, err := j.pool.Query(ctx, `SELECT j.state, j.outcome, count(*) FROM journal j WHERE `+where+` GROUP BY 1, 2 ORDER BY 1, 2`, args...)
	if err != nil {
		return nil, j.wrap("count", err)
	}
	out, err := pgx.CollectRows(rows, func(sc pgx.CollectableRow) (journal.StateCount, error) {
		var c journal.StateCount
		var s, o string
		err := sc.Scan(&s, &o, &c.Rows)
		c.State, c.Outcome = paybatch.State(s), paybatch.Outcome(o)
		return c, err
	})
	return out, j.wrap("count", err)
}

// PageBounds numbers the rows matching q in source row order and keeps
// every size-th and the last (the journal_source index gives the order).
func (j *Journal) PageBounds(ctx context.Context, q journal.Query, size int) (journal.PageBounds, error) {
	var pb journal.PageBounds
	if size <= 0 {
		return pb, fmt.Errorf("journal %s: page bounds: page size %d", j.name, size)
	}
	where, args := queryWhere(q)
	if q.SourceFile != "" {
		sheet, one, err := j.oneSheet(ctx, q.SourceFile)
		if err != nil {
			return pb, err
		}
		if one {
			args = append(args, sheet)
			where += fmt.Sprintf(` AND j.source_sheet = $%d`, len(args))
		}
	}
	args = append(args, size)
	rows, err := j.pool.Query(ctx, fmt.Sprintf(`SELECT source_row, rn, n FROM (SELECT j.source_row,
		row_number() OVER (ORDER BY j.source_row) AS rn, count(*) OVER () AS n FROM journal j WHERE %s) s
		WHERE rn %% $%d = 0 OR rn = n ORDER BY rn`, where, len(args)), args...)
	if err != nil {
		return pb, j.wrap("page bounds", err)
	}
	defer rows.Close()
	for rows.Next() {
		var row int32
		var rn, n int64
		if err := rows.Scan(&row, &rn, &n); err != nil {
			return pb, j.wrap("page bounds", err)
		}
		if rn%int64(size) == 0 {
			pb.Ends = append(pb.Ends, int(row))
		}
		if rn == n {
			pb.Last, pb.Rows = int(row), int(n)
		}
	}
	return pb, j.wrap("page bounds", rows.Err())
}

// oneSheet returns the sheet of the file's rows when they all come from
// one (a CSV, or an XLSX batch: the usual case), found by two probes of
// the journal_source index (source_file, source_sheet, source_row): a
// keyset page given the sheet is a range scan of that index in order,
// where without it it walks every entry of the file (a deep page of a
// million-row batch took 0.27 s).
func (j *Journal) oneSheet(ctx context.Context, file string) (string, bool, error) {
	var lo, hi *string
	if err := j.pool.QueryRow(ctx, `SELECT min(source_sheet), max(source_sheet) FROM journal WHERE source_file = $1`, file).Scan(&lo, &hi); err != nil {
		return "", false, j.wrap("read", err)
	}
	if lo == nil || hi == nil || *lo != *hi {
		return "", false, nil
	}
	return *lo, true, nil
}

// queryWhere is q's condition on journal j (without the keyset).
func queryWhere(q journal.Query) (string, []any) {
	sql := `TRUE`
	var args []any
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, s := range q.States {
			states[i] = string(s)
		}
		args = append(args, states)
		sql += fmt.Sprintf(` AND j.state = ANY($%d)`, len(args))
	}
	if len(q.Outcomes) > 0 {
		outs := make([]string, len(q.Outcomes))
		for i, o := range q.Outcomes {
			outs[i] = string(o)
		}
		args = append(args, outs)
		sql += fmt.Sprintf(` AND j.outcome = ANY($%d)`, len(args))
	}
	if q.SourceFile != "" {
		args = append(args, q.SourceFile)
		sql += fmt.Sprintf(` AND j.source_file = $%d`, len(args))
	}
	if q.MerchantTxID != "" {
		args = append(args, q.MerchantTxID)
		sql += fmt.Sprintf(` AND j.merchant_transaction_id = $%d`, len(args))
	}
	if q.Attention {
		sql += ` AND (j.state NOT IN ('final', 'accepted') OR j.outcome IN ('failed', 'cancelled') OR j.problem <> '')`
	}
	return sql, args
}

// RecordRejects stores rows the readers refused, card numbers masked; one
// already recorded for the same file, sheet, row and column is kept.
func (j *Journal) RecordRejects(ctx context.Context, rejects []journal.Reject) error {
	if len(rejects) == 0 {
		return nil
	}
	tx, err := j.pool.Begin(ctx)
	if err != nil {
		return j.wrap("rejects", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	for _, r := range rejects {
		b.Queue(`INSERT INTO rejects SELECT $1, $2, $3, $4, $5, $6, $7
			WHERE NOT EXISTS (SELECT 1 FROM rejects WHERE source_file = $1 AND source_sheet = $2 AND source_row = $3 AND column_name = $4)`,
			r.Source.File, r.Source.Sheet, int32(r.Source.Row), r.Column,
			paybatch.MaskCardNumbers(r.Value), paybatch.MaskCardNumbers(r.Reason), r.MerchantTxID)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return j.wrap("rejects", err)
	}
	return j.wrap("rejects", tx.Commit(ctx))
}

// Rejects returns every recorded reject in source order.
func (j *Journal) Rejects(ctx context.Context) ([]journal.Reject, error) {
	rows, err := j.pool.Query(ctx, `SELECT coalesce(source_file, ''), coalesce(source_sheet, ''), coalesce(source_row, 0),
		coalesce(column_name, ''), coalesce(value, ''), coalesce(reason, ''), coalesce(merchant_transaction_id, '')
		FROM rejects ORDER BY source_file, source_sheet, source_row, column_name`)
	if err != nil {
		return nil, j.wrap("rejects", err)
	}
	out, err := pgx.CollectRows(rows, func(sc pgx.CollectableRow) (journal.Reject, error) {
		var r journal.Reject
		var row int32
		err := sc.Scan(&r.Source.File, &r.Source.Sheet, &row, &r.Column, &r.Value, &r.Reason, &r.MerchantTxID)
		r.Source.Row = int(row)
		return r, err
	})
	return out, j.wrap("rejects", err)
}

// Conflicts returns every recorded conflict, in the order detected.
func (j *Journal) Conflicts(ctx context.Context) ([]journal.Conflict, error) {
	rows, err := j.pool.Query(ctx, `SELECT c.key, c.merchant_transaction_id, c.source_file, c.source_sheet, c.source_row,
			c.journal_body_sha256, c.new_body_sha256, c.new_amount_minor, c.currency, coalesce(j.state, '')
		FROM conflicts c LEFT JOIN journal j ON j.key = c.key
		ORDER BY c.detected_at, c.source_file, c.source_sheet, c.source_row`)
	if err != nil {
		return nil, j.wrap("conflicts", err)
	}
	out, err := pgx.CollectRows(rows, scanConflict)
	return out, j.wrap("conflicts", err)
}

// RecordInput notes that a file was processed, replacing an earlier note
// of the same path and hash.
func (j *Journal) RecordInput(ctx context.Context, in journal.Input, at time.Time) error {
	tx, err := j.pool.Begin(ctx)
	if err != nil {
		return j.wrap("inputs", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `DELETE FROM inputs WHERE path = $1 AND sha256 = $2`, in.Path, in.SHA256); err != nil {
		return j.wrap("inputs", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO inputs VALUES ($1, $2, $3, $4, $5, $6)`,
		in.Path, in.SHA256, int32(in.Rows), string(in.Kind), string(in.Provider), at.UTC()); err != nil {
		return j.wrap("inputs", err)
	}
	return j.wrap("inputs", tx.Commit(ctx))
}

// InputProcessed reports whether a file with this content hash was
// submitted from path before and every row journaled from it is finished.
func (j *Journal) InputProcessed(ctx context.Context, path, sha256 string) (bool, error) {
	var seen, open int
	err := j.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM inputs WHERE path = $1 AND sha256 = $2),
		(SELECT count(*) FROM journal WHERE source_file = $1 AND state NOT IN ('final', 'declined', 'rejected', 'conflict'))`,
		path, sha256).Scan(&seen, &open)
	if err != nil {
		return false, j.wrap("inputs", err)
	}
	return seen > 0 && open == 0, nil
}
