package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/paybatch/paybatch"
)

// JournalMemoryLimit is the DuckDB memory_limit of a journal.
const JournalMemoryLimit = "128MB"

// ErrLocked is returned by OpenJournal when another process holds the journal.
var ErrLocked = errors.New("journal is locked by another paybatch run")

// journal.key is unique, but not declared PRIMARY KEY: DuckDB keeps a
// primary key's index in memory whole (≈ 150 MB per million keys, and it
// is rewritten at every checkpoint), which would make memory and ingest
// time grow with the journal. ingest is the only writer of new rows and
// checks each key against the journal before appending it, under the
// journal's lock, and verifies uniqueness before anything is sent
// (checkUnique). Journals created before keep their primary key.
const schema = `
CREATE TABLE IF NOT EXISTS journal (
	key                     VARCHAR NOT NULL,
	provider                VARCHAR NOT NULL,
	kind                    VARCHAR NOT NULL,
	account                 VARCHAR NOT NULL,
	merchant_transaction_id VARCHAR NOT NULL,
	amount_minor            BIGINT,
	currency                VARCHAR NOT NULL,
	body_sha256             VARCHAR NOT NULL,
	state                   VARCHAR NOT NULL,
	outcome                 VARCHAR NOT NULL,
	provider_status         VARCHAR NOT NULL,
	provider_id             VARCHAR NOT NULL,
	order_id                VARCHAR NOT NULL,
	reason_code             VARCHAR NOT NULL,
	problem                 VARCHAR NOT NULL,
	http_status             INTEGER NOT NULL,
	attempts                INTEGER NOT NULL,
	source_file             VARCHAR NOT NULL,
	source_sheet            VARCHAR NOT NULL,
	source_row              INTEGER NOT NULL,
	created_at              TIMESTAMP NOT NULL,
	updated_at              TIMESTAMP NOT NULL,
	sent_at                 TIMESTAMP,
	-- what is needed to resend byte-identically and to look a row up again
	method                  VARCHAR NOT NULL,
	path                    VARCHAR NOT NULL,
	body                    VARCHAR NOT NULL,
	terminal                VARCHAR NOT NULL,
	transaction_ref         VARCHAR NOT NULL,
	order_ref               VARCHAR NOT NULL,
	mandate                 VARCHAR NOT NULL,
	auddis                  VARCHAR NOT NULL,
	bank_account            VARCHAR NOT NULL,
	collection_date         DATE,
	description             VARCHAR NOT NULL,
	default_narrative       VARCHAR NOT NULL,
	-- what the provider recorded, when it said
	provider_amount_minor   BIGINT,
	provider_date           DATE,
	replayed                BOOLEAN NOT NULL,
	polls                   INTEGER NOT NULL,
	polled_at               TIMESTAMP,
	final_at                TIMESTAMP
);
-- State changes are appended here first (cheap, durable), then folded into
-- journal in bulk at the end of a run or when the journal is next opened.
CREATE TABLE IF NOT EXISTS journal_events (
	seq                   BIGINT NOT NULL,
	key                   VARCHAR NOT NULL,
	state                 VARCHAR NOT NULL,
	outcome               VARCHAR NOT NULL,
	provider_status       VARCHAR NOT NULL,
	provider_id           VARCHAR NOT NULL,
	order_id              VARCHAR NOT NULL,
	reason_code           VARCHAR NOT NULL,
	problem               VARCHAR NOT NULL,
	http_status           INTEGER NOT NULL,
	attempts              INTEGER NOT NULL,
	updated_at            TIMESTAMP NOT NULL,
	sent_at               TIMESTAMP,
	provider_amount_minor BIGINT,
	provider_date         DATE,
	replayed              BOOLEAN NOT NULL,
	polls                 INTEGER NOT NULL,
	polled_at             TIMESTAMP,
	final_at              TIMESTAMP
);
CREATE TABLE IF NOT EXISTS rejects (
	source_file             VARCHAR,
	source_sheet            VARCHAR,
	source_row              INTEGER,
	column_name             VARCHAR,
	value                   VARCHAR,
	reason                  VARCHAR,
	merchant_transaction_id VARCHAR
);
CREATE TABLE IF NOT EXISTS inputs (
	path         VARCHAR,
	sha256       VARCHAR,
	rows         INTEGER,
	kind         VARCHAR,
	provider     VARCHAR,
	processed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS conflicts (
	key                     VARCHAR,
	merchant_transaction_id VARCHAR,
	source_file             VARCHAR,
	source_sheet            VARCHAR,
	source_row              INTEGER,
	journal_body_sha256     VARCHAR,
	new_body_sha256         VARCHAR,
	new_amount_minor        BIGINT,
	currency                VARCHAR,
	detected_at             TIMESTAMP
);
`

// columns of journal in schema order (used by the appender and by reads).
const journalColumns = `key, provider, kind, account, merchant_transaction_id, amount_minor, currency, body_sha256,
	state, outcome, provider_status, provider_id, order_id, reason_code, problem, http_status, attempts,
	source_file, source_sheet, source_row, created_at, updated_at, sent_at,
	method, path, body, terminal, transaction_ref, order_ref, mandate, auddis, bank_account, collection_date,
	description, default_narrative, provider_amount_minor, provider_date, replayed, polls, polled_at, final_at`

// Row is one journaled instruction and where it stands.
type Row struct {
	Key          string
	Provider     paybatch.Provider
	Kind         paybatch.Kind
	Account      string
	MerchantTxID string
	Amount       paybatch.Money // zero Minor when the instruction has none
	BodySHA256   string

	State          paybatch.State
	Outcome        paybatch.Outcome
	ProviderStatus string
	ProviderID     string
	OrderID        string
	ReasonCode     string
	Problem        string
	HTTPStatus     int
	Attempts       int

	Source    paybatch.Source
	CreatedAt time.Time
	UpdatedAt time.Time
	SentAt    time.Time // zero until the first send

	Method, Path string
	Body         []byte

	Terminal, TransactionRef, OrderRef string
	Mandate, Auddis, BankAccount       string
	CollectionDate                     time.Time
	Description, DefaultNarrative      string

	ProviderAmount *int64    // minor units the provider recorded
	ProviderDate   time.Time // collection/credit date the provider stored
	Replayed       bool
	Polls          int
	PolledAt       time.Time
	FinalAt        time.Time
}

// Instruction rebuilds the instruction a row was made from (enough for a
// provider lookup).
func (r *Row) Instruction() paybatch.Instruction {
	return paybatch.Instruction{
		Kind: r.Kind, Provider: r.Provider, MerchantTxID: r.MerchantTxID, Amount: r.Amount,
		Terminal: r.Terminal, TransactionRef: r.TransactionRef, OrderRef: r.OrderRef,
		Mandate: r.Mandate, Auddis: r.Auddis, BankAccount: r.BankAccount,
		CollectionDate: r.CollectionDate, Description: r.Description, DefaultNarrative: r.DefaultNarrative,
		Source: r.Source,
	}
}

// Journal is the durable record of every instruction paybatch has taken on.
// One process at a time holds it (a lock file beside it).
type Journal struct {
	db   *sql.DB
	path string
	lock *flock.Flock

	pageRows  int // rows per page of a phase (default pageSize; tests lower it)
	chunkSize int // input rows compared at once (default chunkRows; tests lower it)

	wmu    sync.Mutex // serialises writer start/stop
	writer *writer
}

// OpenJournal opens (creating if needed) the journal at path.
func OpenJournal(ctx context.Context, path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	lk := flock.New(path + ".lock")
	ok, err := lk.TryLock()
	if err != nil {
		return nil, fmt.Errorf("journal %s: lock: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err := createJournal(ctx, path); err != nil {
		lk.Unlock()
		return nil, err
	}
	db, err := sql.Open("duckdb", journalDSN(path))
	if err != nil {
		lk.Unlock()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		lk.Unlock()
		return nil, fmt.Errorf("journal %s: create tables: %w", path, err)
	}
	j := &Journal{db: db, path: path, lock: lk}
	// A run that was killed left its last state changes as events.
	if err := j.fold(ctx); err != nil {
		db.Close()
		lk.Unlock()
		return nil, err
	}
	return j, nil
}

// journalDSN opens a journal with extensions never fetched and memory_limit
// bounding DuckDB's buffers (it spills beyond it): with the run's rows paged
// from the journal, the process's memory stays flat whatever the batch size
// (BENCHMARKS.md).
func journalDSN(path string) string {
	return path + "?autoinstall_known_extensions=false&autoload_known_extensions=false&memory_limit=" + JournalMemoryLimit
}

// createJournal makes a new journal atomically: the database is created and
// given its tables under a temporary name, then renamed into place. A
// process killed while DuckDB writes a brand-new file would otherwise leave
// a truncated file that no later run can open. The caller holds the lock.
func createJournal(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // exists (or cannot be checked: opening it will say why)
	}
	tmp := path + ".creating"
	for _, p := range []string{tmp, tmp + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal %s: %w", path, err)
		}
	}
	db, err := sql.Open("duckdb", journalDSN(tmp))
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return fmt.Errorf("journal %s: create tables: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		db.Close()
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	return nil
}

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

// DB gives read access for reports and tests.
func (j *Journal) DB() *sql.DB { return j.db }

// Close flushes and closes the journal and releases its lock.
func (j *Journal) Close() error {
	err := j.Flush(context.Background())
	if cerr := j.db.Close(); err == nil {
		err = cerr
	}
	if uerr := j.lock.Unlock(); err == nil {
		err = uerr
	}
	return err
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

// scanRow reads one journal row in journalColumns order.
func scanRow(sc interface{ Scan(...any) error }) (*Row, error) {
	var (
		r                                              Row
		provider, kind, state, outcome, currency, body string
		amount, pAmount                                sql.NullInt64
		sentAt, collDate, pDate, polledAt, finalAt     sql.NullTime
		httpStatus, attempts, srcRow, polls            int64
	)
	err := sc.Scan(&r.Key, &provider, &kind, &r.Account, &r.MerchantTxID, &amount, &currency, &r.BodySHA256,
		&state, &outcome, &r.ProviderStatus, &r.ProviderID, &r.OrderID, &r.ReasonCode, &r.Problem, &httpStatus, &attempts,
		&r.Source.File, &r.Source.Sheet, &srcRow, &r.CreatedAt, &r.UpdatedAt, &sentAt,
		&r.Method, &r.Path, &body, &r.Terminal, &r.TransactionRef, &r.OrderRef, &r.Mandate, &r.Auddis, &r.BankAccount, &collDate,
		&r.Description, &r.DefaultNarrative, &pAmount, &pDate, &r.Replayed, &polls, &polledAt, &finalAt)
	if err != nil {
		return nil, err
	}
	r.Provider, r.Kind, r.State, r.Outcome = paybatch.Provider(provider), paybatch.Kind(kind), paybatch.State(state), paybatch.Outcome(outcome)
	r.HTTPStatus, r.Attempts, r.Source.Row, r.Polls = int(httpStatus), int(attempts), int(srcRow), int(polls)
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
	r.SentAt, r.CollectionDate, r.ProviderDate = sentAt.Time, collDate.Time, pDate.Time
	r.PolledAt, r.FinalAt = polledAt.Time, finalAt.Time
	return &r, nil
}

// Rows returns journal rows matching an optional SQL condition on the
// journal's columns (e.g. "state = ?"), ordered by source file and row.
func (j *Journal) Rows(ctx context.Context, where string, args ...any) ([]*Row, error) {
	q := "SELECT " + journalColumns + " FROM journal"
	if strings.TrimSpace(where) != "" {
		q += " WHERE " + where
	}
	q += " ORDER BY source_file, source_sheet, source_row, key"
	return j.readRows(ctx, q, args...)
}

// StateCount is how many rows of a provider and kind are in one state.
type StateCount struct {
	Provider paybatch.Provider
	Kind     paybatch.Kind
	State    paybatch.State
	Outcome  paybatch.Outcome
	Rows     int
}

// Counts groups the journal by provider, kind, state and outcome.
func (j *Journal) Counts(ctx context.Context) ([]StateCount, error) {
	rs, err := j.db.QueryContext(ctx, `SELECT provider, kind, state, outcome, count(*) FROM journal
		GROUP BY ALL ORDER BY provider, kind, state, outcome`)
	if err != nil {
		return nil, fmt.Errorf("journal: counts: %w", err)
	}
	defer rs.Close()
	var out []StateCount
	for rs.Next() {
		var c StateCount
		var p, k, s, o string
		if err := rs.Scan(&p, &k, &s, &o, &c.Rows); err != nil {
			return nil, fmt.Errorf("journal: counts: %w", err)
		}
		c.Provider, c.Kind, c.State, c.Outcome = paybatch.Provider(p), paybatch.Kind(k), paybatch.State(s), paybatch.Outcome(o)
		out = append(out, c)
	}
	return out, rs.Err()
}

// Reject is one row the readers refused, kept for the report.
type Reject struct {
	Source       paybatch.Source
	Column       string
	Value        string
	Reason       string
	MerchantTxID string
}

// RecordRejects stores rows skipped under --allow-partial. Rejects already
// recorded for the same file, sheet, row and column are not duplicated.
func (j *Journal) RecordRejects(ctx context.Context, rejects []Reject) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: rejects: %w", err)
	}
	defer tx.Rollback()
	for _, r := range rejects {
		_, err := tx.ExecContext(ctx, `INSERT INTO rejects SELECT ?, ?, ?, ?, ?, ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM rejects WHERE source_file = ? AND source_sheet = ? AND source_row = ? AND column_name = ?)`,
			r.Source.File, r.Source.Sheet, r.Source.Row, r.Column, r.Value, r.Reason, r.MerchantTxID,
			r.Source.File, r.Source.Sheet, r.Source.Row, r.Column)
		if err != nil {
			return fmt.Errorf("journal: rejects: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: rejects: %w", err)
	}
	return nil
}

// Input is one batch file a run took in.
type Input struct {
	Path     string
	SHA256   string
	Rows     int
	Kind     paybatch.Kind
	Provider paybatch.Provider
}

// RecordInput notes that a file was processed (replacing an earlier note of
// the same path and hash).
func (j *Journal) RecordInput(ctx context.Context, in Input, at time.Time) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: inputs: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM inputs WHERE path = ? AND sha256 = ?`, in.Path, in.SHA256); err != nil {
		return fmt.Errorf("journal: inputs: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?)`,
		in.Path, in.SHA256, in.Rows, string(in.Kind), string(in.Provider), at.UTC()); err != nil {
		return fmt.Errorf("journal: inputs: %w", err)
	}
	return tx.Commit()
}

// Conflict is an input row whose content differs from what the journal
// holds under the same idempotency key (an edit after submission). Nothing
// is sent for it.
type Conflict struct {
	Key          string
	MerchantTxID string
	Source       paybatch.Source
	JournalHash  string
	NewHash      string
	NewAmount    paybatch.Money
	State        paybatch.State // the journaled row's state
}

// InputProcessed reports whether a file with this content hash was
// submitted from path before and every row journaled from it is finished
// (final, declined, rejected or conflict) — the nightly job's "skip it".
func (j *Journal) InputProcessed(ctx context.Context, path, sha256 string) (bool, error) {
	var seen, open int
	err := j.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM inputs WHERE path = ? AND sha256 = ?),
		(SELECT count(*) FROM journal WHERE source_file = ? AND state NOT IN ('final', 'declined', 'rejected', 'conflict'))`,
		path, sha256, path).Scan(&seen, &open)
	if err != nil {
		return false, fmt.Errorf("journal: inputs: %w", err)
	}
	return seen > 0 && open == 0, nil
}
