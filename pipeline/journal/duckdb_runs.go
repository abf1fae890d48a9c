package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StartRun records a run and its inputs in one transaction.
func (j *DuckDB) StartRun(ctx context.Context, r RunStart) error {
	if strings.TrimSpace(r.ID) == "" {
		return errors.New("journal: run: empty id")
	}
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: run %s: %w", r.ID, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE id = ?`, r.ID).Scan(&n); err != nil {
		return fmt.Errorf("journal: run %s: %w", r.ID, err)
	}
	if n > 0 {
		return fmt.Errorf("journal: run %s: %w", r.ID, ErrRunExists)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO runs (id, started_at) VALUES (?, ?)`, r.ID, r.Started.UTC()); err != nil {
		return fmt.Errorf("journal: run %s: %w", r.ID, err)
	}
	for i, in := range r.Inputs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO run_inputs VALUES (?, ?, ?, ?, ?)`, r.ID, i, in.Path, in.SHA256, in.Rows); err != nil {
			return fmt.Errorf("journal: run %s: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: run %s: %w", r.ID, err)
	}
	return nil
}

// stepColumn is the runs column of a step.
func stepColumn(s Step) (string, bool) {
	switch s {
	case StepSubmitted:
		return "submitted_at", true
	case StepReconciled:
		return "reconciled_at", true
	case StepReportWritten:
		return "report_written_at", true
	case StepEmailed:
		return "emailed_at", true
	case StepFinished:
		return "finished_at", true
	}
	return "", false
}

// MarkRun records that run id reached step (the first time counts).
func (j *DuckDB) MarkRun(ctx context.Context, id string, step Step, at time.Time, detail string) error {
	col, ok := stepColumn(step)
	if !ok {
		return fmt.Errorf("journal: run %s: unknown step %q", id, step)
	}
	q := `UPDATE runs SET ` + col + ` = coalesce(` + col + `, ?)`
	args := []any{at.UTC()}
	if step == StepReportWritten {
		q += `, report_path = if(report_written_at IS NULL, ?, report_path)`
		args = append(args, detail)
	}
	q += ` WHERE id = ?`
	res, err := j.db.ExecContext(ctx, q, append(args, id)...)
	if err != nil {
		return fmt.Errorf("journal: run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("journal: run %s: %w", id, ErrNoRun)
	}
	return nil
}

// Run returns one run record.
func (j *DuckDB) Run(ctx context.Context, id string) (RunRecord, error) {
	rs, err := j.runs(ctx, `WHERE id = ?`, id)
	if err != nil {
		return RunRecord{}, err
	}
	if len(rs) == 0 {
		return RunRecord{}, fmt.Errorf("journal: run %s: %w", id, ErrNoRun)
	}
	return rs[0], nil
}

// Runs returns run records newest first.
func (j *DuckDB) Runs(ctx context.Context, q RunQuery) ([]RunRecord, error) {
	where := ""
	if q.Unfinished {
		where = `WHERE finished_at IS NULL`
	}
	where += ` ORDER BY started_at DESC, id DESC`
	if q.Limit > 0 {
		where += fmt.Sprintf(` LIMIT %d`, q.Limit)
	}
	return j.runs(ctx, where)
}

func (j *DuckDB) runs(ctx context.Context, tail string, args ...any) ([]RunRecord, error) {
	rs, err := j.db.QueryContext(ctx, `SELECT id, started_at, submitted_at, reconciled_at, report_written_at, report_path,
		emailed_at, finished_at FROM runs `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: runs: %w", err)
	}
	var out []RunRecord
	for rs.Next() {
		var r RunRecord
		var sub, rec, rep, mail, fin sql.NullTime
		if err := rs.Scan(&r.ID, &r.Started, &sub, &rec, &rep, &r.ReportPath, &mail, &fin); err != nil {
			rs.Close()
			return nil, fmt.Errorf("journal: runs: %w", err)
		}
		r.Submitted, r.Reconciled, r.ReportWritten, r.Emailed, r.Finished = sub.Time, rec.Time, rep.Time, mail.Time, fin.Time
		out = append(out, r)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("journal: runs: %w", err)
	}
	for i := range out {
		ins, err := j.db.QueryContext(ctx, `SELECT path, sha256, rows FROM run_inputs WHERE run_id = ? ORDER BY ord`, out[i].ID)
		if err != nil {
			return nil, fmt.Errorf("journal: runs: %w", err)
		}
		for ins.Next() {
			var in RunInput
			if err := ins.Scan(&in.Path, &in.SHA256, &in.Rows); err != nil {
				ins.Close()
				return nil, fmt.Errorf("journal: runs: %w", err)
			}
			out[i].Inputs = append(out[i].Inputs, in)
		}
		ins.Close()
		if err := ins.Err(); err != nil {
			return nil, fmt.Errorf("journal: runs: %w", err)
		}
	}
	return out, nil
}
