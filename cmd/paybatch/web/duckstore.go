package web

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/paybatch/paybatch/pipeline/journal"
)

// DuckStore is the Store on a DuckDB database (the journal's).
type DuckStore struct {
	db *sql.DB
}

// OpenStore is the store in an open DuckDB journal: its tables are created
// by the journal's migration 0005_web.sql.
func OpenStore(ctx context.Context, j *journal.DuckDB) (*DuckStore, error) {
	db := j.SQL()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE table_name = 'web_batches'`).Scan(&n); err != nil || n == 0 {
		return nil, fmt.Errorf("web store: journal %s has no web tables (migration 0005_web): %v", j.Name(), err)
	}
	return &DuckStore{db: db}, nil
}

// conflict reports DuckDB's answer to two transactions writing one row, or
// inserting one key: the later one is refused and is retried, and then sees
// what the first one committed.
func conflict(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "conflict") || strings.Contains(msg, "duplicate key")
}

// inTx runs fn in a transaction, retrying it when DuckDB refused it for a
// write-write conflict with a concurrent transaction.
func (s *DuckStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var tx *sql.Tx
		tx, err = s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		err = fn(tx)
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		if !conflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

func utc(t time.Time) time.Time { return t.UTC() }

func (s *DuckStore) CreateUser(ctx context.Context, u User) (User, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM web_users WHERE lower(name) = lower(?)`, u.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("user %q: %w", u.Name, ErrExists)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO web_users VALUES (nextval('web_user_id'), ?, ?, ?, ?, ?) RETURNING id`,
			u.Name, string(u.Role), u.PasswordHash, u.Disabled, utc(u.CreatedAt)).Scan(&u.ID)
	})
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

const userCols = `id, name, role, password_hash, disabled, created_at`

func scanUser(sc scanner) (User, error) {
	var u User
	var role string
	err := sc.Scan(&u.ID, &u.Name, &role, &u.PasswordHash, &u.Disabled, &u.CreatedAt)
	u.Role = Role(role)
	return u, err
}

func (s *DuckStore) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM web_users WHERE lower(name) = lower(?)`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	return u, err
}

func (s *DuckStore) Users(ctx context.Context) ([]User, error) {
	return queryAll(ctx, s.db, scanUser, `SELECT `+userCols+` FROM web_users ORDER BY name`)
}

// scanner is what a scan function reads one row from: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryAll runs q and returns every row, each read by scan.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *DuckStore) UpdateUser(ctx context.Context, u User) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE web_users SET role = ?, password_hash = ?, disabled = ? WHERE id = ?`,
			string(u.Role), u.PasswordHash, u.Disabled, u.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %q: %w", u.Name, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE user_id = ?`, u.ID)
		return err
	})
}

func (s *DuckStore) CreateSession(ctx context.Context, tokenHash string, userID int64, expires time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO web_sessions VALUES (?, ?, ?, ?)`, tokenHash, userID, utc(time.Now()), utc(expires))
	return err
}

func (s *DuckStore) Session(ctx context.Context, tokenHash string, now time.Time) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT u.id, u.name, u.role, u.password_hash, u.disabled, u.created_at
		FROM web_sessions s JOIN web_users u ON u.id = s.user_id
		WHERE s.token_sha256 = ? AND s.expires_at > ? AND NOT u.disabled`, tokenHash, utc(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

func (s *DuckStore) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_sha256 = ?`, tokenHash)
	return err
}

func (s *DuckStore) NextBatchID(ctx context.Context) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT nextval('web_batch_id')`).Scan(&id)
	return id, err
}

func (s *DuckStore) CreateBatch(ctx context.Context, b Batch) error {
	sum, err := json.Marshal(b.Summary)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO web_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			b.ID, string(b.Kind), string(b.Provider), b.FileName, b.Path, b.Sheet, b.SHA256, b.Size, b.UploaderID,
			utc(b.UploadedAt), string(b.State), b.ValidOnly, b.Rows, b.Valid, b.Rejected, string(sum),
			b.ApprovalsNeeded, b.Approvals, utc(b.UploadedAt), b.Message)
		if err != nil {
			return err
		}
		return auditTx(ctx, tx, AuditEvent{BatchID: b.ID, User: b.Uploader, Action: "uploaded",
			Detail: fmt.Sprintf("%s (%d bytes, sha256 %s): %d rows, %d valid, %d rejected", b.FileName, b.Size, b.SHA256, b.Rows, b.Valid, b.Rejected),
			At:     b.UploadedAt})
	})
}

func (s *DuckStore) Revalidate(ctx context.Context, b Batch) error {
	sum, err := json.Marshal(b.Summary)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE web_batches SET sheet = ?, state = ?, rows = ?, valid = ?, rejected = ?, summary = ?,
			approvals_needed = ?, updated_at = ? WHERE id = ? AND state IN ('uploaded', 'invalid')`,
			b.Sheet, string(b.State), b.Rows, b.Valid, b.Rejected, string(sum), b.ApprovalsNeeded, utc(time.Now()), b.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrStateChanged
		}
		return auditTx(ctx, tx, AuditEvent{BatchID: b.ID, User: b.Uploader, Action: "validated again",
			Detail: fmt.Sprintf("sheet %q: %d rows, %d valid, %d rejected", b.Sheet, b.Rows, b.Valid, b.Rejected), At: time.Now()})
	})
}

const batchCols = `b.id, b.kind, b.provider, b.file_name, b.path, b.sheet, b.sha256, b.size, b.uploader_id, u.name,
	b.uploaded_at, b.state, b.valid_only, b.rows, b.valid, b.rejected, b.summary, b.approvals_needed, b.approvals,
	b.updated_at, b.message`

func scanBatch(sc scanner) (Batch, error) {
	var b Batch
	var kind, prov, state, sum string
	err := sc.Scan(&b.ID, &kind, &prov, &b.FileName, &b.Path, &b.Sheet, &b.SHA256, &b.Size, &b.UploaderID, &b.Uploader,
		&b.UploadedAt, &state, &b.ValidOnly, &b.Rows, &b.Valid, &b.Rejected, &sum, &b.ApprovalsNeeded, &b.Approvals,
		&b.UpdatedAt, &b.Message)
	if err != nil {
		return b, err
	}
	b.Kind, b.State = kindOf(kind), State(state)
	b.Provider = b.Kind.Provider()
	if err := json.Unmarshal([]byte(sum), &b.Summary); err != nil {
		return b, fmt.Errorf("batch %d summary: %w", b.ID, err)
	}
	return b, nil
}

func (s *DuckStore) batchTx(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (Batch, error) {
	b, err := scanBatch(q.QueryRowContext(ctx, `SELECT `+batchCols+` FROM web_batches b JOIN web_users u ON u.id = b.uploader_id WHERE b.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Batch{}, fmt.Errorf("batch %d: %w", id, ErrNotFound)
	}
	return b, err
}

func (s *DuckStore) Batch(ctx context.Context, id int64) (Batch, error) {
	return s.batchTx(ctx, s.db, id)
}

func (s *DuckStore) Batches(ctx context.Context, state State, offset, limit int) ([]Batch, int, error) {
	cond, args := "", []any{}
	if state != "" {
		cond, args = " WHERE b.state = ?", append(args, string(state))
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM web_batches b`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := queryAll(ctx, s.db, scanBatch, `SELECT `+batchCols+` FROM web_batches b JOIN web_users u ON u.id = b.uploader_id`+cond+
		` ORDER BY b.id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	return out, total, err
}

func stateList(states []State) (string, []any) {
	ph := make([]string, len(states))
	args := make([]any, len(states))
	for i, s := range states {
		ph[i], args[i] = "?", string(s)
	}
	return "(" + strings.Join(ph, ", ") + ")", args
}

func (s *DuckStore) Transition(ctx context.Context, id int64, from []State, to State, message string, ev AuditEvent) (Batch, error) {
	var b Batch
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		in, args := stateList(from)
		res, err := tx.ExecContext(ctx, `UPDATE web_batches SET state = ?, message = ?, updated_at = ? WHERE id = ? AND state IN `+in,
			append([]any{string(to), message, utc(time.Now()), id}, args...)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := s.batchTx(ctx, tx, id); err != nil {
				return err
			}
			return ErrStateChanged
		}
		ev.BatchID = id
		if err := auditTx(ctx, tx, ev); err != nil {
			return err
		}
		b, err = s.batchTx(ctx, tx, id)
		return err
	})
	return b, err
}

func (s *DuckStore) Submit(ctx context.Context, id, userID int64, validOnly bool, ev AuditEvent) (Batch, error) {
	var b Batch
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.batchTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.UploaderID != userID {
			return fmt.Errorf("%w: only the person who uploaded batch %d submits it", ErrForbidden, id)
		}
		res, err := tx.ExecContext(ctx, `UPDATE web_batches SET state = 'awaiting_approval', valid_only = ?, updated_at = ?
			WHERE id = ? AND state = 'uploaded' AND uploader_id = ? AND (rejected = 0 OR ?) AND valid > 0`,
			validOnly, utc(time.Now()), id, userID, validOnly)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if cur.State == StateUploaded && cur.Rejected > 0 && !validOnly {
				return badInput("%d rows are rejected: tick \"send the valid rows only\" to submit the other %d, or fix the file and upload it again", cur.Rejected, cur.Valid)
			}
			return ErrStateChanged
		}
		ev.BatchID = id
		if err := auditTx(ctx, tx, ev); err != nil {
			return err
		}
		b, err = s.batchTx(ctx, tx, id)
		return err
	})
	return b, err
}

// Decide is where maker–checker is enforced, in the database: the approval
// row's key (batch, user) makes one person count once; the UPDATE's
// conditions refuse the uploader and a batch not awaiting approval; and
// because every decision updates the batch row, two concurrent decisions
// conflict and run one after the other (inTx retries the loser), so
// exactly one of them sees the last approval and starts the send.
func (s *DuckStore) Decide(ctx context.Context, id int64, a Approval) (Decision, error) {
	var d Decision
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		d = Decision{}
		cur, err := s.batchTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.UploaderID == a.UserID {
			return ErrSelfApproval
		}
		if cur.State != StateAwaiting {
			return ErrStateChanged
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM web_approvals WHERE batch_id = ? AND user_id = ?`, id, a.UserID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrAlreadyDecided
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO web_approvals VALUES (?, ?, ?, ?, ?)`, id, a.UserID, a.Approve, a.Comment, utc(a.At)); err != nil {
			return err
		}
		ev := AuditEvent{BatchID: id, User: a.User, At: a.At, Detail: a.Comment}
		var res sql.Result
		if a.Approve {
			ev.Action = "approved"
			res, err = tx.ExecContext(ctx, `UPDATE web_batches SET approvals = approvals + 1,
				state = CASE WHEN approvals + 1 >= approvals_needed THEN 'approved' ELSE state END, updated_at = ?
				WHERE id = ? AND state = 'awaiting_approval' AND uploader_id <> ?`, utc(a.At), id, a.UserID)
		} else {
			ev.Action = "rejected"
			res, err = tx.ExecContext(ctx, `UPDATE web_batches SET state = 'rejected_by_approver', message = ?, updated_at = ?
				WHERE id = ? AND state = 'awaiting_approval' AND uploader_id <> ?`, a.Comment, utc(a.At), id, a.UserID)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrStateChanged
		}
		if err := auditTx(ctx, tx, ev); err != nil {
			return err
		}
		d.Batch, err = s.batchTx(ctx, tx, id)
		if err != nil {
			return err
		}
		d.Started = a.Approve && d.Batch.State == StateApproved
		if d.Started {
			return auditTx(ctx, tx, AuditEvent{BatchID: id, User: a.User, Action: "queued for sending", At: a.At,
				Detail: fmt.Sprintf("%d of %d approvals", d.Batch.Approvals, d.Batch.ApprovalsNeeded)})
		}
		return nil
	})
	return d, err
}

func (s *DuckStore) Approvals(ctx context.Context, id int64) ([]Approval, error) {
	return queryAll(ctx, s.db, func(sc scanner) (a Approval, err error) {
		err = sc.Scan(&a.BatchID, &a.UserID, &a.User, &a.Approve, &a.Comment, &a.At)
		return a, err
	}, `SELECT a.batch_id, a.user_id, u.name, a.approve, a.comment, a.decided_at
		FROM web_approvals a JOIN web_users u ON u.id = a.user_id WHERE a.batch_id = ? ORDER BY a.decided_at`, id)
}

func auditTx(ctx context.Context, tx *sql.Tx, ev AuditEvent) error {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO web_audit VALUES (nextval('web_audit_seq'), ?, ?, ?, ?, ?)`,
		ev.BatchID, ev.User, ev.Action, ev.Detail, utc(ev.At))
	return err
}

func (s *DuckStore) Audit(ctx context.Context, ev AuditEvent) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return auditTx(ctx, tx, ev) })
}

func (s *DuckStore) AuditTrail(ctx context.Context, batchID int64) ([]AuditEvent, error) {
	return queryAll(ctx, s.db, func(sc scanner) (e AuditEvent, err error) {
		err = sc.Scan(&e.Seq, &e.BatchID, &e.User, &e.Action, &e.Detail, &e.At)
		return e, err
	}, `SELECT seq, batch_id, user_name, action, detail, logged_at FROM web_audit WHERE batch_id = ? ORDER BY seq`, batchID)
}
