package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// State changes go through a journal.GroupWriter that commits them in
// groups (pgCommitter): a group is one UPDATE … FROM unnest(…) of the rows'
// mutable fields, which refuses to move a row's state backwards (see
// stateRank): when several processes share the journal, a late write cannot
// undo a later state, and a Save the journal refused gets
// ErrStateBackwards.

// ErrStateBackwards is returned by Save when the journal holds a later
// state for the row than the one being saved (another process moved it on):
// the caller must not send.
var ErrStateBackwards = errors.New("the journal holds a later state for this row (another process moved it on)")

// Save durably records r's mutable fields and returns once committed.
func (j *Journal) Save(r *journal.Row) error { return j.startWriter().Save(r) }

// SaveLater queues r's mutable fields for the next group commit.
func (j *Journal) SaveLater(r *journal.Row) error { return j.startWriter().SaveLater(r) }

// SetLinger lets the first state change of a commit group wait up to d for
// others (see journal.GroupWriter.SetLinger); 0 commits at once.
func (j *Journal) SetLinger(d time.Duration) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.linger = d
	if j.writer != nil {
		j.writer.SetLinger(d)
	}
}

func (j *Journal) startWriter() *journal.GroupWriter {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.writer == nil {
		j.writer = journal.NewGroupWriter(pgCommitter{j}, j.linger)
	}
	return j.writer
}

// Flush commits what is queued (stopping the writer until the next save).
func (j *Journal) Flush(ctx context.Context) error {
	j.wmu.Lock()
	w := j.writer
	j.writer = nil
	j.wmu.Unlock()
	if w == nil {
		return nil
	}
	return w.Close()
}

type pgCommitter struct{ j *Journal }

// stateRank orders states: a row may stay in its state or move to a
// higher rank; sending and failed (a retry) may alternate; a terminal
// state is never left.
const stateRank = `CASE %s WHEN 'pending' THEN 0 WHEN 'sending' THEN 1 WHEN 'failed' THEN 1 WHEN 'accepted' THEN 2 ELSE 3 END`

var updateSQL = `UPDATE journal j SET state = u.state, outcome = u.outcome, provider_status = u.provider_status,
	provider_id = u.provider_id, order_id = u.order_id, reason_code = u.reason_code, problem = u.problem,
	http_status = u.http_status, attempts = u.attempts, updated_at = u.updated_at, sent_at = u.sent_at,
	provider_amount_minor = u.provider_amount_minor, provider_date = u.provider_date, replayed = u.replayed,
	polls = u.polls, polled_at = u.polled_at, final_at = u.final_at, poll_refused_at = u.poll_refused_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
	$9::integer[], $10::integer[], $11::timestamptz[], $12::timestamptz[], $13::bigint[], $14::date[], $15::boolean[],
	$16::integer[], $17::timestamptz[], $18::timestamptz[], $19::timestamptz[])
	AS u(key, state, outcome, provider_status, provider_id, order_id, reason_code, problem,
	http_status, attempts, updated_at, sent_at, provider_amount_minor, provider_date, replayed,
	polls, polled_at, final_at, poll_refused_at)
WHERE j.key = u.key AND (j.state = u.state OR ` + fmt.Sprintf(stateRank, "j.state") + ` < ` + fmt.Sprintf(stateRank, "u.state") + `
	OR (j.state IN ('sending', 'failed') AND u.state IN ('sending', 'failed')))
RETURNING j.key`

func (c pgCommitter) Commit(group []journal.Change) (func(*journal.Row) error, error) {
	w := c
	// The last write of a key in the group wins (one goroutine's writes
	// arrive in order).
	last := make(map[string]int, len(group))
	for i, ch := range group {
		last[ch.Row.Key] = i
	}
	n := len(last)
	intents := false // a Save into "sending" is in the group
	for _, ch := range group {
		intents = intents || (ch.Save && ch.Row.State == paybatch.StateSending)
	}
	var (
		keys, states, outcomes, pstatus, pids, oids, reasons, problems = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		https, attempts, polls                                         = make([]int32, 0, n), make([]int32, 0, n), make([]int32, 0, n)
		updated, sent, pdate, polled, final, refused                   = make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n)
		pamount                                                        = make([]*int64, 0, n)
		replayed                                                       = make([]bool, 0, n)
	)
	for i, ch := range group {
		if last[ch.Row.Key] != i {
			continue
		}
		r := ch.Row
		keys, states, outcomes = append(keys, r.Key), append(states, string(r.State)), append(outcomes, string(r.Outcome))
		pstatus, pids, oids = append(pstatus, r.ProviderStatus), append(pids, r.ProviderID), append(oids, r.OrderID)
		reasons, problems = append(reasons, r.ReasonCode), append(problems, r.Problem)
		https, attempts, polls = append(https, int32(r.HTTPStatus)), append(attempts, int32(r.Attempts)), append(polls, int32(r.Polls))
		updated, sent = append(updated, nullTime(r.UpdatedAt)), append(sent, nullTime(r.SentAt))
		pamount, pdate, replayed = append(pamount, r.ProviderAmount), append(pdate, nullDate(r.ProviderDate)), append(replayed, r.Replayed)
		polled, final, refused = append(polled, nullTime(r.PolledAt)), append(final, nullTime(r.FinalAt)), append(refused, nullTime(r.PollRefusedAt))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.j.wmu.Lock()
	fence := w.j.fence
	w.j.wmu.Unlock()
	tx, err := w.j.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal %s: commit: %w", w.j.name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if fence != nil && intents {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM credential_leases WHERE credential = $1 AND holder = $2 AND epoch = $3
			AND expires_at > clock_timestamp() FOR SHARE)`, fence.credential, w.j.holder, fence.epoch).Scan(&ok)
		if err != nil {
			return nil, fmt.Errorf("journal %s: commit: %w", w.j.name, err)
		}
		if !ok {
			return nil, fmt.Errorf("journal %s: lease %s: %w", w.j.name, fence.credential, ErrLeaseLost)
		}
	}
	claimed := map[string]bool(nil) // nil: every key may be written
	if intents {
		if claimed, err = c.claim(ctx, tx, group, last, fence != nil); err != nil {
			return nil, fmt.Errorf("journal %s: commit: %w", w.j.name, err)
		}
		if len(claimed) < len(keys) {
			keys, states, outcomes, pstatus, pids, oids, reasons, problems, https, attempts, updated, sent, pamount, pdate, replayed,
				polls, polled, final, refused = keepClaimed(claimed, keys, states, outcomes, pstatus, pids, oids, reasons, problems,
				https, attempts, updated, sent, pamount, pdate, replayed, polls, polled, final, refused)
		}
	}
	rows, err := tx.Query(ctx, updateSQL, keys, states, outcomes, pstatus, pids, oids, reasons, problems,
		https, attempts, updated, sent, pamount, pdate, replayed, polls, polled, final, refused)
	if err != nil {
		return nil, fmt.Errorf("journal %s: commit: %w", w.j.name, err)
	}
	applied := make(map[string]bool, n)
	var k string
	for rows.Next() {
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, fmt.Errorf("journal %s: commit: %w", w.j.name, err)
		}
		applied[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal %s: commit: %w", w.j.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("journal %s: commit: %w", w.j.name, err)
	}
	return func(r *journal.Row) error {
		if applied[r.Key] {
			return nil
		}
		if claimed != nil && !claimed[r.Key] {
			return fmt.Errorf("journal %s: row %s: %w (%w)", w.j.name, r.Key, journal.ErrClaimed, ErrStateBackwards)
		}
		return fmt.Errorf("journal %s: row %s (%s): %w", w.j.name, r.Key, r.State, ErrStateBackwards)
	}, nil
}

// claim locks, for the group's intents (a Save into "sending"), the rows
// this process may send: each row is claimed by one process only. An
// intent's row is claimed when no other transaction holds it (FOR UPDATE
// SKIP LOCKED: a row another process is claiming right now is skipped,
// not waited for), it still holds the attempt count this process read
// (the intent carries that count plus one), so of two processes that read
// the same row, the second to claim it finds the count moved on and does
// not send — and, when it is "sending", the process that claimed it is
// gone (its claimKey lock is free): a row in flight in a live process,
// which this one read while it was in flight, is that process's to finish;
// a row left "sending" by a process that died is resent under its key.
// Under a lease (fenced) the last rule is waived: the lease holder alone
// sends for the credential, and a row "sending" under an earlier holder is
// its to resend once it has taken the lease over, whether or not that
// holder's session is still open. A claimed row records this process's
// claimKey. claimed holds every key of the group that may be written: the
// other changes' and the claimed intents'.
func (c pgCommitter) claim(ctx context.Context, tx pgx.Tx, group []journal.Change, last map[string]int, fenced bool) (map[string]bool, error) {
	claimed := make(map[string]bool, len(last))
	var keys []string
	var from []int32
	for k, i := range last {
		ch := group[i]
		if !ch.Save || ch.Row.State != paybatch.StateSending {
			claimed[k] = true
			continue
		}
		keys, from = append(keys, k), append(from, int32(ch.Row.Attempts-1))
	}
	rows, err := tx.Query(ctx, `WITH c AS (
			SELECT j.key FROM journal j JOIN unnest($1::text[], $2::integer[]) AS c(key, attempts) ON j.key = c.key
			WHERE j.attempts = c.attempts AND j.state IN ('pending', 'sending', 'failed')
				AND ($4 OR j.state <> 'sending' OR j.claimed_by IS NULL OR j.claimed_by = $3 OR NOT EXISTS (
					SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
						AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
						AND l.classid = $5::integer::oid AND l.objid = j.claimed_by::oid))
			FOR UPDATE OF j SKIP LOCKED)
		UPDATE journal SET claimed_by = $3 FROM c WHERE journal.key = c.key RETURNING journal.key`,
		keys, from, c.j.claimKey, fenced, int32(claimSpace))
	if err != nil {
		return nil, err
	}
	var k string
	_, err = pgx.ForEachRow(rows, []any{&k}, func() error { claimed[k] = true; return nil })
	return claimed, err
}

// keepClaimed drops from the update's columns the rows not claimed.
func keepClaimed(claimed map[string]bool, keys, states, outcomes, pstatus, pids, oids, reasons, problems []string,
	https, attempts []int32, updated, sent []*time.Time, pamount []*int64, pdate []*time.Time, replayed []bool,
	polls []int32, polled, final, refused []*time.Time) ([]string, []string, []string, []string, []string, []string, []string, []string,
	[]int32, []int32, []*time.Time, []*time.Time, []*int64, []*time.Time, []bool, []int32, []*time.Time, []*time.Time, []*time.Time) {
	n := 0
	for i, k := range keys {
		if !claimed[k] {
			continue
		}
		keys[n], states[n], outcomes[n], pstatus[n], pids[n], oids[n], reasons[n], problems[n] = k, states[i], outcomes[i], pstatus[i], pids[i], oids[i], reasons[i], problems[i]
		https[n], attempts[n], updated[n], sent[n], pamount[n], pdate[n], replayed[n] = https[i], attempts[i], updated[i], sent[i], pamount[i], pdate[i], replayed[i]
		polls[n], polled[n], final[n], refused[n] = polls[i], polled[i], final[i], refused[i]
		n++
	}
	return keys[:n], states[:n], outcomes[:n], pstatus[:n], pids[:n], oids[:n], reasons[:n], problems[:n], https[:n], attempts[:n],
		updated[:n], sent[:n], pamount[:n], pdate[:n], replayed[:n], polls[:n], polled[:n], final[:n], refused[:n]
}
