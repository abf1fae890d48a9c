package journal

import (
	"context"
	"errors"
	"iter"
	"slices"
	"time"

	"github.com/paybatch/paybatch"
)

// Errors callers branch on.
var (
	// ErrLocked: another process holds the journal.
	ErrLocked = errors.New("journal is locked by another paybatch run")
	// ErrDamaged: the journal file cannot be read; restore it from backup.
	ErrDamaged = errors.New("journal is damaged")
	// ErrNotJournal: the file is not a paybatch journal.
	ErrNotJournal = errors.New("not a paybatch journal")
	// ErrNewerSchema: the journal was migrated by a newer paybatch.
	ErrNewerSchema = errors.New("journal schema is newer than this paybatch")
	// ErrDuplicateKey means the journal holds two rows under one
	// idempotency key, which Ingest never writes: nothing is sent until it
	// is explained.
	ErrDuplicateKey = errors.New("journal holds two rows under one idempotency key")
	// ErrWriterClosed: a state change arrived after the writer stopped.
	ErrWriterClosed = errors.New("journal writer closed")
	// ErrClaimed: an intent (Save into "sending") was refused because
	// another process sharing the journal claimed the row first (it sends
	// it); the caller must not send, and may go on with other rows.
	ErrClaimed = errors.New("another process claimed this row")
	// ErrNoRun: no run record with that id.
	ErrNoRun = errors.New("no such run in the journal")
	// ErrRunExists: StartRun was given an id the journal already records
	// (on a shared journal, another process may have taken it meanwhile).
	ErrRunExists = errors.New("a run with this id is already recorded")
)

// Journal is the durable record of every instruction paybatch has taken on.
// One process at a time holds it.
type Journal interface {
	RunSet
	StateWriter
	Reader
	Recorder
	RunLog
	// Publish records the holder's progress for readers in other processes
	// (`paybatch status` while a run holds the journal).
	Publish(ctx context.Context, p Progress) error
	// Name is what error messages call the journal (its path).
	Name() string
	// Close flushes pending state changes, closes the journal and releases
	// its lock (unless the caller passed its own Lock to Open).
	Close() error
}

// RunSet is the set of rows one Submit or Poll works on. One run set at a
// time per Journal; each Ingest or SelectAccepted replaces it.
type RunSet interface {
	// Ingest journals the rows of one input: a row whose key this run
	// already took is a duplicate (same body hash) or a conflict (other
	// content); a row whose content differs from the journal's under its
	// key is a conflict; any other row joins the run set, and is appended
	// as given when the journal does not hold its key. A src error stops
	// it, is returned as is, and takes back every row it journaled.
	Ingest(ctx context.Context, src iter.Seq2[*Row, error], now time.Time) (Ingested, error)
	// SelectAccepted makes every accepted row (of provider, or all when
	// empty) the run set and returns how many there are.
	SelectAccepted(ctx context.Context, provider paybatch.Provider) (int, error)
	// Count counts the run set's rows matching f, as of the last Flush.
	Count(ctx context.Context, f Filter) (int, error)
	// Pages yields the run set's rows matching f a page at a time, in
	// input order, as of the last Flush.
	Pages(ctx context.Context, f Filter) iter.Seq2[[]*Row, error]
	// Tally counts and totals the run set by state and outcome.
	Tally(ctx context.Context) (Tally, error)
}

// StateWriter records state changes of journaled rows.
type StateWriter interface {
	// Save durably records r's mutable fields; it returns once committed.
	// It is for intent: a row is "sending" durably before its request
	// leaves.
	Save(r *Row) error
	// SaveLater queues r's mutable fields for the next group commit. It is
	// for what a request returned: losing it in a crash leaves the row
	// "sending", and the resend with the same key is answered by replay.
	// An error surfaces on a later save or Flush.
	SaveLater(r *Row) error
	// Flush commits what is queued and makes it visible to Count, Pages
	// and Tally.
	Flush(ctx context.Context) error
	// SetLinger lets the first change of a commit group wait up to d for
	// others, so that at a rate limit, where changes arrive one at a time,
	// they still share commits (see GroupWriter); 0 commits at once.
	SetLinger(d time.Duration)
}

// Reader answers questions about the whole journal (latest states).
type Reader interface {
	Counts(ctx context.Context) ([]StateCount, error)
	// Rows returns the rows matching q, ordered by source file, sheet, row
	// and key.
	Rows(ctx context.Context, q Query) ([]*Row, error)
	// CountRows counts the rows matching q (Limit and AfterRow ignored).
	CountRows(ctx context.Context, q Query) (int, error)
	// CountStates counts the rows matching q by state and outcome, in one
	// pass (Provider and Kind are left empty; Limit, AfterRow and
	// ThroughRow ignored).
	CountStates(ctx context.Context, q Query) ([]StateCount, error)
	// PageBounds returns where each page of size rows of the rows matching
	// q (SourceFile set, in source row order; AfterRow, ThroughRow and
	// Limit ignored) ends — computed once for rows that no longer change
	// (a finished batch), it lets every page be read as one bounded range.
	PageBounds(ctx context.Context, q Query, size int) (PageBounds, error)
	// IDsFromOtherFiles returns, in journal order, up to limit of the ids
	// among ids that the journal holds from a source file other than file,
	// and how many such rows there are (a new batch repeating ids already
	// journaled). It consumes ids as they come, and all of them unless it
	// fails.
	IDsFromOtherFiles(ctx context.Context, file string, ids iter.Seq[string], limit int) ([]string, int, error)
}

// Recorder keeps what a run read besides the rows it journaled.
type Recorder interface {
	// RecordRejects stores rows the readers refused (values and reasons
	// with card numbers masked). A reject already recorded for the same
	// file, sheet, row and column is not duplicated.
	RecordRejects(ctx context.Context, rejects []Reject) error
	// Rejects returns every recorded reject in source order.
	Rejects(ctx context.Context) ([]Reject, error)
	// Conflicts returns every recorded conflict (edits after submission).
	Conflicts(ctx context.Context) ([]Conflict, error)
	// RecordInput notes that a file was processed (replacing an earlier
	// note of the same path and hash).
	RecordInput(ctx context.Context, in Input, at time.Time) error
	// InputProcessed reports whether a file with this content hash was
	// submitted from path before and every row journaled from it is
	// finished (final, declined, rejected or conflict).
	InputProcessed(ctx context.Context, path, sha256 string) (bool, error)
}

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
	// PollRefusedAt is when the provider last refused a status query for
	// the row (it does not know the id it gave): a poll phase that started
	// before it does not ask again.
	PollRefusedAt time.Time
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

// Filter selects rows of the run set.
type Filter struct {
	// States keeps rows in any of these states (none: every state).
	States []paybatch.State
	// Pollable keeps rows with a provider id whose status query was not
	// refused at or after PollStart.
	Pollable  bool
	PollStart time.Time
}

// Query selects rows of the whole journal.
type Query struct {
	// States keeps rows in any of these states (none: every state).
	States []paybatch.State
	// Attention keeps rows that need a person: not final or accepted, a
	// failed or cancelled outcome, or a problem recorded.
	Attention bool
	// MerchantTxID keeps the rows of one merchant_transaction_id.
	MerchantTxID string
	// SourceFile keeps the rows journaled from one file.
	SourceFile string
	// Outcomes keeps rows with any of these outcomes (none: every
	// outcome); with States, a row must match both.
	Outcomes []paybatch.Outcome
	// AfterRow keeps rows after this source row, and Limit caps how many
	// are returned (0: all): keyset paging through one SourceFile (one
	// sheet), a page at a time whatever the file's size.
	AfterRow int
	Limit    int
	// ThroughRow, when set, keeps rows up to this source row (inclusive):
	// with AfterRow, the range a keyset page lies in, known from the
	// listing's PageBounds, so the page is read without searching for
	// where it ends.
	ThroughRow int
}

// PageBounds are where the pages of a keyset listing of one file end (see
// Reader.PageBounds): Ends[k] is the source row of the (k+1)·size-th row
// matching the query, Last the source row of the last one, Rows how many
// match. The rows after any source row a up to and including
// Ends[i+1] — i the first index with Ends[i] > a — are more than size (or
// all that are left when there is no Ends[i+1]: up to Last).
type PageBounds struct {
	Ends []int
	Last int
	Rows int
}

// Through is the source row to read through for the next limit (≤ size+1)
// rows after source row after, and whether there are any.
func (pb PageBounds) Through(after int) (int, bool) {
	if pb.Rows == 0 || after >= pb.Last {
		return 0, false
	}
	i, _ := slices.BinarySearch(pb.Ends, after+1)
	if i+1 < len(pb.Ends) {
		return pb.Ends[i+1], true
	}
	return pb.Last, true
}

// Ingested is what Ingest made of an input.
type Ingested struct {
	Rows       int // rows in the run set (duplicates and conflicts excluded)
	New        int // journaled for the first time
	Duplicates int // same key and content seen twice in the input
	// Conflicts are the first MaxConflicts conflicting input rows, in input
	// order; ConflictCount counts them all.
	Conflicts     []Conflict
	ConflictCount int
}

// MaxConflicts bounds Ingested.Conflicts; Conflicts() returns every one.
const MaxConflicts = 1000

// Tally is the run set by state and outcome, with exact totals.
type Tally struct {
	States   map[paybatch.State]int
	Outcomes map[paybatch.Outcome]int
	Totals   map[paybatch.State]paybatch.Totals
}

// StateCount is how many rows of a provider and kind are in one state.
type StateCount struct {
	Provider paybatch.Provider
	Kind     paybatch.Kind
	State    paybatch.State
	Outcome  paybatch.Outcome
	Rows     int
}

// Reject is one row the readers refused, kept for the report.
type Reject struct {
	Source       paybatch.Source
	Column       string
	Value        string
	Reason       string
	MerchantTxID string
}

// Input is one batch file a run took in.
type Input struct {
	Path     string
	SHA256   string
	Rows     int
	Kind     paybatch.Kind
	Provider paybatch.Provider
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
	State        paybatch.State // the journaled row's state ("" when the key was taken earlier in the same input)
}
