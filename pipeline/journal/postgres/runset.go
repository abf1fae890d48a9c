package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// chunkRows is how many input rows Ingest compares with the journal at once.
const chunkRows = 5000

// ErrConcurrentIngest: another process journaled one of this input's keys
// while this one was reading it. Nothing was journaled or sent; run again.
var ErrConcurrentIngest = errors.New("another process journaled the same idempotency key at the same moment; nothing was journaled, run again")

// Ingest journals one input in one transaction: a src error rolls back
// every row it journaled (none was sent), and other processes see the
// input's rows only once all of them are journaled.
func (j *Journal) Ingest(ctx context.Context, src iter.Seq2[*journal.Row, error], now time.Time) (journal.Ingested, error) {
	var res journal.Ingested
	if err := j.Flush(ctx); err != nil {
		return res, err
	}
	j.rsMu.Lock()
	defer j.rsMu.Unlock()
	c := j.rs.Conn()
	tx, err := c.Begin(ctx)
	if err != nil {
		return res, j.wrap("ingest", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `TRUNCATE run_set, run_conflicts`); err != nil {
		return res, j.wrap("ingest", err)
	}
	in := ingester{j: j, tx: tx, res: &res}
	chunk := make([]staged, 0, chunkRows)
	var ord int64
	for r, err := range src {
		if err != nil {
			return res, err
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ord++
		chunk = append(chunk, staged{ord, r})
		if len(chunk) == chunkRows {
			if err := in.compare(ctx, chunk); err != nil {
				return res, err
			}
			chunk = chunk[:0]
		}
	}
	if err := in.compare(ctx, chunk); err != nil {
		return res, err
	}
	// The same edit seen again (in this input or an earlier run) is
	// recorded once.
	if _, err := tx.Exec(ctx, `INSERT INTO conflicts
		SELECT DISTINCT ON (key, new_body_sha256) key, merchant_transaction_id, source_file, source_sheet, source_row,
			journal_body_sha256, new_body_sha256, new_amount_minor, currency, $1::timestamptz
		FROM run_conflicts c
		WHERE NOT EXISTS (SELECT 1 FROM conflicts x WHERE x.key = c.key AND x.new_body_sha256 = c.new_body_sha256)
		ORDER BY key, new_body_sha256, ord`, now.UTC()); err != nil {
		return res, j.wrap("conflicts", err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE fresh) FROM run_set`).Scan(&res.Rows, &res.New); err != nil {
		return res, j.wrap("ingest", err)
	}
	if err := j.loadConflicts(ctx, tx, &res); err != nil {
		return res, err
	}
	if err := tx.Commit(ctx); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return res, fmt.Errorf("journal %s: %w", j.name, ErrConcurrentIngest)
		}
		return res, j.wrap("ingest", err)
	}
	return res, nil
}

type staged struct {
	ord int64
	row *journal.Row
}

type ingester struct {
	j   *Journal
	tx  pgx.Tx
	res *journal.Ingested
}

// compare classifies one chunk as a sequential reader of the whole input
// would: a key the run already took is a duplicate (same content) or a
// conflict; otherwise content differing from the journal's is a conflict;
// otherwise the row joins the run, and is journaled when new.
func (in *ingester) compare(ctx context.Context, chunk []staged) error {
	if len(chunk) == 0 {
		return nil
	}
	keys := make([]string, len(chunk))
	for i, s := range chunk {
		keys[i] = s.row.Key
	}
	runHash := make(map[string]string)
	rows, err := in.tx.Query(ctx, `SELECT key, body_sha256 FROM run_set WHERE key = ANY($1)`, keys)
	if err != nil {
		return in.j.wrap("ingest", err)
	}
	var k, h, st string
	_, err = pgx.ForEachRow(rows, []any{&k, &h}, func() error { runHash[k] = h; return nil })
	if err != nil {
		return in.j.wrap("ingest", err)
	}
	type jrow struct{ hash, state string }
	jHash := make(map[string]jrow)
	rows, err = in.tx.Query(ctx, `SELECT key, body_sha256, state FROM journal WHERE key = ANY($1)`, keys)
	if err != nil {
		return in.j.wrap("ingest", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&k, &h, &st}, func() error { jHash[k] = jrow{h, st}; return nil })
	if err != nil {
		return in.j.wrap("ingest", err)
	}
	var fresh, runRows, confl [][]any
	for _, s := range chunk {
		r := s.row
		h, ok := runHash[r.Key]
		jr, inJournal := jHash[r.Key]
		switch {
		case ok && h == r.BodySHA256:
			in.res.Duplicates++
		case ok:
			confl = append(confl, conflictValues(s, h, ""))
		case inJournal && jr.hash != r.BodySHA256:
			confl = append(confl, conflictValues(s, jr.hash, jr.state))
		default:
			runHash[r.Key] = r.BodySHA256
			runRows = append(runRows, []any{s.ord, r.Key, r.BodySHA256, !inJournal})
			if !inJournal {
				fresh = append(fresh, rowValues(r))
			}
		}
	}
	if len(fresh) > 0 {
		if _, err := in.tx.CopyFrom(ctx, pgx.Identifier{"journal"}, insertColumns, pgx.CopyFromRows(fresh)); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" {
				return fmt.Errorf("journal %s: %w", in.j.name, ErrConcurrentIngest)
			}
			return in.j.wrap("ingest", err)
		}
	}
	if len(runRows) > 0 {
		if _, err := in.tx.CopyFrom(ctx, pgx.Identifier{"run_set"}, []string{"ord", "key", "body_sha256", "fresh"}, pgx.CopyFromRows(runRows)); err != nil {
			return in.j.wrap("ingest", err)
		}
	}
	if len(confl) > 0 {
		if _, err := in.tx.CopyFrom(ctx, pgx.Identifier{"run_conflicts"}, []string{"ord", "key", "merchant_transaction_id",
			"source_file", "source_sheet", "source_row", "journal_body_sha256", "new_body_sha256", "new_amount_minor", "currency", "state"},
			pgx.CopyFromRows(confl)); err != nil {
			return in.j.wrap("ingest", err)
		}
	}
	return nil
}

func conflictValues(s staged, journalHash, state string) []any {
	r := s.row
	return []any{s.ord, r.Key, r.MerchantTxID, r.Source.File, r.Source.Sheet, int32(r.Source.Row),
		journalHash, r.BodySHA256, amountArg(r.Amount), r.Amount.Currency.Code(), state}
}

func (j *Journal) loadConflicts(ctx context.Context, q pgx.Tx, res *journal.Ingested) error {
	if err := q.QueryRow(ctx, `SELECT count(*) FROM run_conflicts`).Scan(&res.ConflictCount); err != nil {
		return j.wrap("conflicts", err)
	}
	if res.ConflictCount == 0 {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT key, merchant_transaction_id, source_file, source_sheet, source_row,
			journal_body_sha256, new_body_sha256, new_amount_minor, currency, state
		FROM run_conflicts ORDER BY ord LIMIT $1`, journal.MaxConflicts)
	if err != nil {
		return j.wrap("conflicts", err)
	}
	res.Conflicts, err = pgx.CollectRows(rows, scanConflict)
	return j.wrap("conflicts", err)
}

func scanConflict(sc pgx.CollectableRow) (journal.Conflict, error) {
	var (
		c            journal.Conflict
		srcRow       int32
		amount       *int64
		currency, st string
	)
	if err := sc.Scan(&c.Key, &c.MerchantTxID, &c.Source.File, &c.Source.Sheet, &srcRow, &c.JournalHash, &c.NewHash,
		&amount, &currency, &st); err != nil {
		return c, err
	}
	c.Source.Row, c.State = int(srcRow), paybatch.State(st)
	if currency != "" {
		cur, err := paybatch.ParseCurrency(currency)
		if err != nil {
			return c, fmt.Errorf("conflict %s: %w", c.Key, err)
		}
		c.NewAmount.Currency = cur
	}
	if amount != nil {
		c.NewAmount.Minor = *amount
	}
	return c, nil
}

// SelectAccepted makes every accepted row (of provider, or all) the run
// set, in the order they were journaled.
func (j *Journal) SelectAccepted(ctx context.Context, provider paybatch.Provider) (int, error) {
	if err := j.Flush(ctx); err != nil {
		return 0, err
	}
	j.rsMu.Lock()
	defer j.rsMu.Unlock()
	c := j.rs.Conn()
	tx, err := c.Begin(ctx)
	if err != nil {
		return 0, j.wrap("select accepted", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `TRUNCATE run_set, run_conflicts`); err != nil {
		return 0, j.wrap("select accepted", err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO run_set SELECT row_number() OVER (ORDER BY seq), key, body_sha256, false
		FROM journal WHERE state = 'accepted' AND ($1 = '' OR provider = $1)`, string(provider))
	if err != nil {
		return 0, j.wrap("select accepted", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, j.wrap("select accepted", err)
	}
	return int(tag.RowsAffected()), nil
}

// filterSQL is f as a condition on journal aliased j; args start at $n.
func filterSQL(f journal.Filter, n int) (string, []any) {
	var conds []string
	var args []any
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		conds = append(conds, "j.state = ANY($"+strconv.Itoa(n)+")")
		args = append(args, states)
		n++
	}
	if f.Pollable {
		conds = append(conds, "j.provider_id <> '' AND (j.poll_refused_at IS NULL OR j.poll_refused_at < $"+strconv.Itoa(n)+")")
		args = append(args, f.PollStart.UTC())
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), args
}

// Count counts the run set's rows matching f.
func (j *Journal) Count(ctx context.Context, f journal.Filter) (int, error) {
	cond, args := filterSQL(f, 1)
	j.rsMu.Lock()
	defer j.rsMu.Unlock()
	var n int
	err := j.rs.QueryRow(ctx, `SELECT count(*) FROM run_set r JOIN journal j ON j.key = r.key WHERE `+cond, args...).Scan(&n)
	return n, j.wrap("count", err)
}

// Pages yields the run set's rows matching f a page at a time, in input
// order (keyset pagination on the run set's order).
func (j *Journal) Pages(ctx context.Context, f journal.Filter) iter.Seq2[[]*journal.Row, error] {
	return func(yield func([]*journal.Row, error) bool) {
		cond, args := filterSQL(f, 3)
		q := `SELECT r.ord, ` + selectColumns + ` FROM run_set r JOIN journal j ON j.key = r.key
			WHERE r.ord > $1 AND ` + cond + ` ORDER BY r.ord LIMIT $2`
		var last int64
		for {
			page, next, err := j.page(ctx, q, append([]any{last, j.pageRows}, args...))
			if err != nil {
				yield(nil, err)
				return
			}
			if len(page) == 0 {
				return
			}
			last = next
			if !yield(page, nil) {
				return
			}
		}
	}
}

func (j *Journal) page(ctx context.Context, q string, args []any) ([]*journal.Row, int64, error) {
	j.rsMu.Lock()
	defer j.rsMu.Unlock()
	rows, err := j.rs.Query(ctx, q, args...)
	if err != nil {
		return nil, 0, j.wrap("read", err)
	}
	var last int64
	out, err := pgx.CollectRows(rows, func(sc pgx.CollectableRow) (*journal.Row, error) {
		return scanRow(ordScanner{sc, &last})
	})
	return out, last, j.wrap("read", err)
}

// ordScanner reads a leading ord column before a journal row.
type ordScanner struct {
	pgx.CollectableRow
	ord *int64
}

func (o ordScanner) Scan(dest ...any) error {
	return o.CollectableRow.Scan(append([]any{o.ord}, dest...)...)
}

// Tally counts the run set by state and outcome and totals its amounts
// exactly (PostgreSQL sums bigint into numeric).
func (j *Journal) Tally(ctx context.Context) (journal.Tally, error) {
	t := journal.Tally{States: map[paybatch.State]int{}, Outcomes: map[paybatch.Outcome]int{}, Totals: map[paybatch.State]paybatch.Totals{}}
	j.rsMu.Lock()
	defer j.rsMu.Unlock()
	rows, err := j.rs.Query(ctx, `SELECT j.state, j.outcome, j.currency, count(*), sum(j.amount_minor)::text
		FROM run_set r JOIN journal j ON j.key = r.key GROUP BY 1, 2, 3`)
	if err != nil {
		return t, j.wrap("tally", err)
	}
	var (
		state, outcome, currency string
		sum                      *string
		n                        int
	)
	_, err = pgx.ForEachRow(rows, []any{&state, &outcome, &currency, &n, &sum}, func() error {
		st := paybatch.State(state)
		t.States[st] += n
		if outcome != "" {
			t.Outcomes[paybatch.Outcome(outcome)] += n
		}
		if sum == nil || *sum == "0" {
			return nil
		}
		minor, err := strconv.ParseInt(*sum, 10, 64)
		if err != nil {
			return fmt.Errorf("%s %s total %s minor units: %w", state, currency, *sum, err)
		}
		cur, err := paybatch.ParseCurrency(currency)
		if err != nil {
			return err
		}
		tot := t.Totals[st]
		if tot == nil {
			tot = paybatch.Totals{}
			t.Totals[st] = tot
		}
		return tot.Add(paybatch.Money{Currency: cur, Minor: minor})
	})
	return t, j.wrap("tally", err)
}
