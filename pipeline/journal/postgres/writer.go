package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// State changes go through one writer goroutine that commits them in
// groups: every Save blocks until the group holding its change has been
// committed ("state written before the request leaves"), while one commit
// serves every worker that arrived meanwhile. A group is one UPDATE … FROM
// unnest(…) of the rows' mutable fields, which refuses to move a row's
// state backwards (see stateRank): when several processes share the
// journal, a late write cannot undo a later state.

const (
	maxGroup = 1024
	queueLen = 4096
)

// ErrStateBackwards is returned by Save when the journal holds a later
// state for the row than the one being saved (another process moved it on):
// the caller must not send.
var ErrStateBackwards = errors.New("the journal holds a later state for this row (another process moved it on)")

type write struct {
	row  *journal.Row // a copy of the mutable fields
	done chan error
}

type writer struct {
	j    *Journal
	in   chan write
	quit chan struct{}
	exit chan struct{}

	errMu sync.Mutex
	err   error
}

func (w *writer) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

func snapshot(r *journal.Row) *journal.Row {
	c := *r
	if r.ProviderAmount != nil {
		v := *r.ProviderAmount
		c.ProviderAmount = &v
	}
	return &c
}

// Save durably records r's mutable fields and returns once committed.
func (j *Journal) Save(r *journal.Row) error {
	w, err := j.startWriter()
	if err != nil {
		return err
	}
	wr := write{row: snapshot(r), done: make(chan error, 1)}
	select {
	case w.in <- wr:
	case <-w.exit:
		return journal.ErrWriterClosed
	}
	select {
	case err := <-wr.done:
		return err
	case <-w.exit:
		select {
		case err := <-wr.done:
			return err
		default:
			return journal.ErrWriterClosed
		}
	}
}

// SaveLater queues r's mutable fields for the next group commit.
func (j *Journal) SaveLater(r *journal.Row) error {
	w, err := j.startWriter()
	if err != nil {
		return err
	}
	if err := w.failed(); err != nil {
		return err
	}
	select {
	case w.in <- write{row: snapshot(r)}:
		return nil
	case <-w.exit:
		return journal.ErrWriterClosed
	}
}

func (j *Journal) startWriter() (*writer, error) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.writer == nil {
		j.writer = &writer{j: j, in: make(chan write, queueLen), quit: make(chan struct{}), exit: make(chan struct{})}
		go j.writer.run()
	}
	return j.writer, nil
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
	close(w.quit)
	<-w.exit
	return w.failed()
}

func (w *writer) run() {
	defer close(w.exit)
	group := make([]write, 0, maxGroup)
	for {
		group = group[:0]
		select {
		case <-w.quit:
			for {
				select {
				case wr := <-w.in:
					group = append(group, wr)
					if len(group) < maxGroup {
						continue
					}
				default:
				}
				if len(group) == 0 {
					return
				}
				w.finish(group, w.commit(group))
				group = group[:0]
			}
		case wr := <-w.in:
			group = append(group, wr)
		}
	drain:
		for len(group) < maxGroup {
			select {
			case wr := <-w.in:
				group = append(group, wr)
			default:
				break drain
			}
		}
		w.finish(group, w.commit(group))
	}
}

// finish hands each write its result: the group's error, or for a Save
// whose row the journal refused, ErrStateBackwards.
func (w *writer) finish(group []write, res commitResult) {
	if res.err != nil {
		w.errMu.Lock()
		if w.err == nil {
			w.err = res.err
		}
		w.errMu.Unlock()
	}
	for _, wr := range group {
		if wr.done == nil {
			continue
		}
		err := res.err
		if err == nil && !res.applied[wr.row.Key] {
			err = fmt.Errorf("journal %s: row %s (%s): %w", w.j.name, wr.row.Key, wr.row.State, ErrStateBackwards)
		}
		wr.done <- err
	}
}

type commitResult struct {
	applied map[string]bool
	err     error
}

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

func (w *writer) commit(group []write) commitResult {
	// The last write of a key in the group wins (one goroutine's writes
	// arrive in order).
	last := make(map[string]int, len(group))
	for i, wr := range group {
		last[wr.row.Key] = i
	}
	n := len(last)
	intents := false // a Save into "sending" is in the group
	for _, wr := range group {
		intents = intents || (wr.done != nil && wr.row.State == paybatch.StateSending)
	}
	var (
		keys, states, outcomes, pstatus, pids, oids, reasons, problems = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		https, attempts, polls                                         = make([]int32, 0, n), make([]int32, 0, n), make([]int32, 0, n)
		updated, sent, pdate, polled, final, refused                   = make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n), make([]*time.Time, 0, n)
		pamount                                                        = make([]*int64, 0, n)
		replayed                                                       = make([]bool, 0, n)
	)
	for i, wr := range group {
		if last[wr.row.Key] != i {
			continue
		}
		r := wr.row
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
		return commitResult{err: fmt.Errorf("journal %s: commit: %w", w.j.name, err)}
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if fence != nil && intents {
		var ok bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM credential_leases WHERE credential = $1 AND holder = $2 AND epoch = $3
			AND expires_at > clock_timestamp() FOR SHARE)`, fence.credential, w.j.holder, fence.epoch).Scan(&ok)
		if err != nil {
			return commitResult{err: fmt.Errorf("journal %s: commit: %w", w.j.name, err)}
		}
		if !ok {
			return commitResult{err: fmt.Errorf("journal %s: lease %s: %w", w.j.name, fence.credential, ErrLeaseLost)}
		}
	}
	rows, err := tx.Query(ctx, updateSQL, keys, states, outcomes, pstatus, pids, oids, reasons, problems,
		https, attempts, updated, sent, pamount, pdate, replayed, polls, polled, final, refused)
	if err != nil {
		return commitResult{err: fmt.Errorf("journal %s: commit: %w", w.j.name, err)}
	}
	applied := make(map[string]bool, n)
	var k string
	for rows.Next() {
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return commitResult{err: fmt.Errorf("journal %s: commit: %w", w.j.name, err)}
		}
		applied[k] = true
	}
	if err := rows.Err(); err != nil {
		return commitResult{err: fmt.Errorf("journal %s: commit: %w", w.j.name, err)}
	}
	if err := tx.Commit(ctx); err != nil {
		return commitResult{err: fmt.Errorf("journal %s: commit: %w", w.j.name, err)}
	}
	return commitResult{applied: applied}
}
