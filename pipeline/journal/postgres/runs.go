package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paybatch/paybatch/pipeline/journal"
)

// StartRun records a run and the inputs it took in.
func (j *Journal) StartRun(ctx context.Context, r journal.RunStart) error {
	tx, err := j.pool.Begin(ctx)
	if err != nil {
		return j.wrap("runs", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `INSERT INTO runs (id, started_at) VALUES ($1, $2)`, r.ID, r.Started.UTC()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return fmt.Errorf("journal %s: run %s: %w", j.name, r.ID, journal.ErrRunExists)
		}
		return j.wrap("runs", err)
	}
	for i, in := range r.Inputs {
		if _, err := tx.Exec(ctx, `INSERT INTO run_inputs VALUES ($1, $2, $3, $4, $5)`, r.ID, int32(i), in.Path, in.SHA256, int64(in.Rows)); err != nil {
			return j.wrap("runs", err)
		}
	}
	return j.wrap("runs", tx.Commit(ctx))
}

var stepColumn = map[journal.Step]string{
	journal.StepSubmitted: "submitted_at", journal.StepReconciled: "reconciled_at",
	journal.StepReportWritten: "report_written_at", journal.StepEmailed: "emailed_at", journal.StepFinished: "finished_at",
}

// MarkRun records that a run reached step (the first time is kept).
func (j *Journal) MarkRun(ctx context.Context, id string, step journal.Step, at time.Time, detail string) error {
	col, ok := stepColumn[step]
	if !ok {
		return fmt.Errorf("journal %s: run %s: unknown step %q", j.name, id, step)
	}
	q := `UPDATE runs SET ` + col + ` = coalesce(` + col + `, $2)`
	args := []any{id, at.UTC()}
	if step == journal.StepReportWritten {
		q += `, report_path = CASE WHEN ` + col + ` IS NULL THEN $3 ELSE report_path END`
		args = append(args, detail)
	}
	tag, err := j.pool.Exec(ctx, q+` WHERE id = $1`, args...)
	if err != nil {
		return j.wrap("runs", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("journal %s: run %s: %w", j.name, id, journal.ErrNoRun)
	}
	return nil
}

// Run returns one run.
func (j *Journal) Run(ctx context.Context, id string) (journal.RunRecord, error) {
	rs, err := j.runs(ctx, `WHERE id = $1`, id)
	if err != nil {
		return journal.RunRecord{}, err
	}
	if len(rs) == 0 {
		return journal.RunRecord{}, fmt.Errorf("journal %s: run %s: %w", j.name, id, journal.ErrNoRun)
	}
	return rs[0], nil
}

// Runs returns runs newest first.
func (j *Journal) Runs(ctx context.Context, q journal.RunQuery) ([]journal.RunRecord, error) {
	where := ``
	if q.Unfinished {
		where = `WHERE finished_at IS NULL`
	}
	where += ` ORDER BY started_at DESC, id DESC`
	if q.Limit > 0 {
		where += fmt.Sprintf(` LIMIT %d`, q.Limit)
	}
	return j.runs(ctx, where)
}

func (j *Journal) runs(ctx context.Context, tail string, args ...any) ([]journal.RunRecord, error) {
	rows, err := j.pool.Query(ctx, `SELECT id, started_at, submitted_at, reconciled_at, report_written_at, report_path,
		emailed_at, finished_at FROM runs `+tail, args...)
	if err != nil {
		return nil, j.wrap("runs", err)
	}
	out, err := pgx.CollectRows(rows, func(sc pgx.CollectableRow) (journal.RunRecord, error) {
		var r journal.RunRecord
		var started time.Time
		var sub, rec, rep, em, fin *time.Time
		err := sc.Scan(&r.ID, &started, &sub, &rec, &rep, &r.ReportPath, &em, &fin)
		r.Started, r.Submitted, r.Reconciled, r.ReportWritten, r.Emailed, r.Finished = started.UTC(), utc(sub), utc(rec), utc(rep), utc(em), utc(fin)
		return r, err
	})
	if err != nil {
		return nil, j.wrap("runs", err)
	}
	for i := range out {
		rows, err := j.pool.Query(ctx, `SELECT path, sha256, rows FROM run_inputs WHERE run_id = $1 ORDER BY ord`, out[i].ID)
		if err != nil {
			return nil, j.wrap("runs", err)
		}
		out[i].Inputs, err = pgx.CollectRows(rows, func(sc pgx.CollectableRow) (journal.RunInput, error) {
			var in journal.RunInput
			var n int64
			err := sc.Scan(&in.Path, &in.SHA256, &n)
			in.Rows = int(n)
			return in, err
		})
		if err != nil {
			return nil, j.wrap("runs", err)
		}
	}
	return out, nil
}
