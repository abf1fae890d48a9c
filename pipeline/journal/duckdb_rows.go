package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
)

// journalColumns are journal's columns in table order (the Appender's
// order and every read's).
const journalColumns = `key, provider, kind, account, merchant_transaction_id, amount_minor, currency, body_sha256,
	state, outcome, provider_status, provider_id, order_id, reason_code, problem, http_status, attempts,
	source_file, source_sheet, source_row, created_at, updated_at, sent_at,
	method, path, body, terminal, transaction_ref, order_ref, mandate, auddis, bank_account, collection_date,
	description, default_narrative, provider_amount_minor, provider_date, replayed, polls, polled_at, final_at,
	poll_refused_at`

// eventColumns are the mutable columns, journal_events' columns after seq
// and key, in table order.
var eventColumns = []string{"state", "outcome", "provider_status", "provider_id", "order_id", "reason_code", "problem",
	"http_status", "attempts", "updated_at", "sent_at", "provider_amount_minor", "provider_date", "replayed", "polls",
	"polled_at", "final_at", "poll_refused_at"}

// latestRowsSQL selects every journal column with the latest event applied
// (as journal_export does, with every column).
func latestRowsSQL() string {
	return `SELECT ` + latestColumns() + ` FROM journal AS j LEFT JOIN (SELECT * FROM journal_events
		QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1) AS e ON e.key = j.key`
}

// latestColumns are journalColumns with the latest event (e) applied to
// the journal row (j).
func latestColumns() string {
	mutable := map[string]bool{}
	for _, c := range eventColumns {
		mutable[c] = true
	}
	var cols []string
	for _, c := range strings.Split(journalColumns, ",") {
		c = strings.TrimSpace(c)
		if mutable[c] {
			cols = append(cols, fmt.Sprintf("if(e.key IS NULL, j.%s, e.%s) AS %s", c, c, c))
		} else {
			cols = append(cols, "j."+c)
		}
	}
	return strings.Join(cols, ", ")
}

// latestOf selects cols (of journal j and its latest event e) of the
// journal rows matching jcond, a condition on columns no state change
// alters (source, id): the latest event is looked for among the events of
// those rows only — a semi-join that scans journal_events once — instead
// of numbering every event of the journal and joining all of them (a
// million-row send's events took seconds to number, or failed at the
// memory limit, for a page of fifty rows). jcond's placeholders appear
// twice: its arguments go twice.
func latestOf(cols, jcond string) string {
	return `SELECT ` + cols + ` FROM (SELECT * FROM journal WHERE ` + jcond + `) AS j LEFT JOIN (SELECT * FROM journal_events
		WHERE key IN (SELECT key FROM journal WHERE ` + jcond + `)
		QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1) AS e ON e.key = j.key`
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func nullDate(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func amountArg(m paybatch.Money) any {
	if m.Minor == 0 {
		return nil
	}
	return m.Minor
}

// journalArgs are r's values in journalColumns order, for the Appender.
func journalArgs(r *Row) []driver.Value {
	return []driver.Value{r.Key, string(r.Provider), string(r.Kind), r.Account, r.MerchantTxID,
		amountArg(r.Amount), r.Amount.Currency.Code(), r.BodySHA256,
		string(r.State), string(r.Outcome), r.ProviderStatus, r.ProviderID, r.OrderID, r.ReasonCode, r.Problem,
		int32(r.HTTPStatus), int32(r.Attempts),
		r.Source.File, r.Source.Sheet, int32(r.Source.Row), r.CreatedAt.UTC(), r.UpdatedAt.UTC(), nullTime(r.SentAt),
		r.Method, r.Path, string(r.Body), r.Terminal, r.TransactionRef, r.OrderRef, r.Mandate, r.Auddis, r.BankAccount,
		nullDate(r.CollectionDate), r.Description, r.DefaultNarrative,
		nullInt(r.ProviderAmount), nullDate(r.ProviderDate), r.Replayed, int32(r.Polls), nullTime(r.PolledAt), nullTime(r.FinalAt),
		nullTime(r.PollRefusedAt)}
}

// eventArgs are r's mutable fields as a journal_events row.
func eventArgs(seq int64, r *Row) []driver.Value {
	return []driver.Value{seq, r.Key, string(r.State), string(r.Outcome), r.ProviderStatus, r.ProviderID, r.OrderID,
		r.ReasonCode, r.Problem, int32(r.HTTPStatus), int32(r.Attempts), r.UpdatedAt.UTC(), nullTime(r.SentAt),
		nullInt(r.ProviderAmount), nullDate(r.ProviderDate), r.Replayed, int32(r.Polls), nullTime(r.PolledAt), nullTime(r.FinalAt),
		nullTime(r.PollRefusedAt)}
}

// ScanRow reads one journal row in journalColumns order (every backend
// selects the same columns in that order). Times come back in UTC.
func ScanRow(sc interface{ Scan(...any) error }) (*Row, error) {
	var (
		r                                                                    Row
		provider, kind, state, outcome, currency, body                       string
		amount, pAmount, httpStatus, attempts, srcRow, polls                 sql.NullInt64
		created, updated, sentAt, collDate, pDate, polledAt, finalAt, refuse sql.NullTime
	)
	err := sc.Scan(&r.Key, &provider, &kind, &r.Account, &r.MerchantTxID, &amount, &currency, &r.BodySHA256,
		&state, &outcome, &r.ProviderStatus, &r.ProviderID, &r.OrderID, &r.ReasonCode, &r.Problem, &httpStatus, &attempts,
		&r.Source.File, &r.Source.Sheet, &srcRow, &created, &updated, &sentAt,
		&r.Method, &r.Path, &body, &r.Terminal, &r.TransactionRef, &r.OrderRef, &r.Mandate, &r.Auddis, &r.BankAccount, &collDate,
		&r.Description, &r.DefaultNarrative, &pAmount, &pDate, &r.Replayed, &polls, &polledAt, &finalAt, &refuse)
	if err != nil {
		return nil, err
	}
	r.Provider, r.Kind, r.State, r.Outcome = paybatch.Provider(provider), paybatch.Kind(kind), paybatch.State(state), paybatch.Outcome(outcome)
	r.HTTPStatus, r.Attempts, r.Source.Row, r.Polls = int(httpStatus.Int64), int(attempts.Int64), int(srcRow.Int64), int(polls.Int64)
	r.Body = []byte(body)
	if currency != "" {
		cur, err := paybatch.ParseCurrency(currency)
		if err != nil {
			return nil, fmt.Errorf("journal row %s: %w", r.Key, err)
		}
		r.Amount.Currency = cur
	}
	if amount.Valid {
		r.Amount.Minor = amount.Int64
	}
	if pAmount.Valid {
		v := pAmount.Int64
		r.ProviderAmount = &v
	}
	utc := func(t sql.NullTime) time.Time {
		if !t.Valid {
			return time.Time{}
		}
		return t.Time.UTC()
	}
	r.CreatedAt, r.UpdatedAt, r.SentAt, r.CollectionDate, r.ProviderDate = utc(created), utc(updated), utc(sentAt), utc(collDate), utc(pDate)
	r.PolledAt, r.FinalAt, r.PollRefusedAt = utc(polledAt), utc(finalAt), utc(refuse)
	return &r, nil
}

func (j *DuckDB) readRows(ctx context.Context, q string, args ...any) ([]*Row, error) {
	rs, err := j.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("journal: read: %w", err)
	}
	defer rs.Close()
	var out []*Row
	for rs.Next() {
		r, err := ScanRow(rs)
		if err != nil {
			return nil, fmt.Errorf("journal: read: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("journal: read: %w", err)
	}
	return out, nil
}

// CountStates groups the rows matching q by state and outcome.
func (j *DuckDB) CountStates(ctx context.Context, q Query) ([]StateCount, error) {
	where, args := q.where()
	q.AfterRow, q.ThroughRow = 0, 0 // ignored
	_, narrow, largs, err := j.latest(ctx, q)
	if err != nil {
		return nil, err
	}
	rs, err := j.db.QueryContext(ctx, `SELECT state, outcome, count(*) FROM (`+narrow+`) WHERE `+where+` GROUP BY ALL ORDER BY ALL`, append(largs, args...)...)
	if err != nil {
		return nil, fmt.Errorf("journal: count: %w", err)
	}
	defer rs.Close()
	var out []StateCount
	for rs.Next() {
		var c StateCount
		var s, o string
		if err := rs.Scan(&s, &o, &c.Rows); err != nil {
			return nil, fmt.Errorf("journal: count: %w", err)
		}
		c.State, c.Outcome = paybatch.State(s), paybatch.Outcome(o)
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("journal: count: %w", err)
	}
	return out, nil
}

// PageBounds numbers the rows matching q in source row order over the
// narrow columns and keeps every size-th and the last.
func (j *DuckDB) PageBounds(ctx context.Context, q Query, size int) (PageBounds, error) {
	where, args := q.where()
	q.AfterRow, q.ThroughRow = 0, 0 // ignored
	_, narrow, largs, err := j.latest(ctx, q)
	if err != nil {
		return PageBounds{}, err
	}
	return scanPageBounds(ctx, j.db, `SELECT source_row, rn, n FROM (SELECT source_row,
		row_number() OVER (ORDER BY source_row) AS rn, count(*) OVER () AS n FROM (`+narrow+`) WHERE `+where+`)
		WHERE rn % ? = 0 OR rn = n ORDER BY rn`, size, append(largs, args...)...)
}

// scanPageBounds reads PageBounds from rows of (source_row, number, count).
func scanPageBounds(ctx context.Context, db *sql.DB, q string, size int, args ...any) (PageBounds, error) {
	var pb PageBounds
	if size <= 0 {
		return pb, fmt.Errorf("journal: page bounds: page size %d", size)
	}
	rs, err := db.QueryContext(ctx, q, append(args, size)...)
	if err != nil {
		return pb, fmt.Errorf("journal: page bounds: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var row, rn, n int
		if err := rs.Scan(&row, &rn, &n); err != nil {
			return pb, fmt.Errorf("journal: page bounds: %w", err)
		}
		if rn%size == 0 {
			pb.Ends = append(pb.Ends, row)
		}
		if rn == n {
			pb.Last, pb.Rows = row, n
		}
	}
	if err := rs.Err(); err != nil {
		return pb, fmt.Errorf("journal: page bounds: %w", err)
	}
	return pb, nil
}
