package web

import (
	"context"
	"errors"
	"time"

	"github.com/paybatch/paybatch"
)

// Role is what a user may do. Roles do not nest: an admin manages users
// and sees everything but neither uploads nor approves, so the person who
// can create accounts cannot also move money alone.
type Role string

const (
	RoleViewer   Role = "viewer"   // reads batches, outcomes, downloads and the audit trail
	RoleUploader Role = "uploader" // viewer + uploads batches and submits them for approval
	RoleApprover Role = "approver" // viewer + approves or rejects other people's batches
	RoleAdmin    Role = "admin"    // viewer + manages users
)

// Roles lists every role in a stable order.
var Roles = []Role{RoleViewer, RoleUploader, RoleApprover, RoleAdmin}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", badInput("unknown role %q (want viewer, uploader, approver or admin)", s)
}

// User is an account.
type User struct {
	ID           int64
	Name         string
	Role         Role
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
}

// State is where a batch stands. Every batch is in exactly one.
type State string

const (
	StateUploaded   State = "uploaded"             // validated; its uploader submits or discards it
	StateInvalid    State = "invalid"              // no valid row: nothing can be sent
	StateAwaiting   State = "awaiting_approval"    // submitted; waiting for approver(s)
	StateApproved   State = "approved"             // approved; queued for sending
	StateDeclined   State = "rejected_by_approver" // an approver said no
	StateCancelled  State = "cancelled"            // discarded by its uploader
	StateSending    State = "sending"              // the engine is sending and polling
	StateStopped    State = "stopped"              // sending stopped early; resumes on restart or retry
	StateDone       State = "done"                 // every row succeeded
	StateExceptions State = "done_with_exceptions" // finished; some rows declined, failed or are pending
)

// States lists the states in the order finance meets them.
var States = []State{StateUploaded, StateInvalid, StateAwaiting, StateApproved, StateDeclined, StateCancelled,
	StateSending, StateStopped, StateDone, StateExceptions}

// Label is the state as the pages show it.
func (s State) Label() string {
	switch s {
	case StateUploaded:
		return "uploaded (not submitted)"
	case StateInvalid:
		return "rejected (validation)"
	case StateAwaiting:
		return "awaiting approval"
	case StateApproved:
		return "approved (queued)"
	case StateDeclined:
		return "rejected by approver"
	case StateCancelled:
		return "cancelled"
	case StateSending:
		return "sending"
	case StateStopped:
		return "stopped (will resume)"
	case StateDone:
		return "done"
	case StateExceptions:
		return "done with exceptions"
	}
	return string(s)
}

// Finished reports whether the batch will not change any more.
func (s State) Finished() bool {
	switch s {
	case StateInvalid, StateDeclined, StateCancelled, StateDone, StateExceptions:
		return true
	}
	return false
}

// Batch is one uploaded file and its way through approval and sending.
type Batch struct {
	ID         int64
	Kind       paybatch.Kind
	Provider   paybatch.Provider
	FileName   string // as uploaded (display only; never trusted as a path)
	Path       string // the stored copy the engine reads
	Sheet      string
	SHA256     string
	Size       int64
	UploaderID int64
	Uploader   string
	UploadedAt time.Time
	State      State
	ValidOnly  bool // the uploader chose to send the valid rows only
	Rows       int
	Valid      int
	Rejected   int
	Summary    Summary
	// ApprovalsNeeded is 1, or 2 when a currency's total is over its
	// threshold; Approvals counts approvals given so far.
	ApprovalsNeeded int
	Approvals       int
	UpdatedAt       time.Time
	Message         string // why sending stopped, or the final note

	mapping map[string]string // the uploaded header mapping (kept as mapping.yaml beside the file), loaded by loadMapping
}

// Summary is what validation found, kept with the batch so every page shows
// the same numbers without reading the file again.
type Summary struct {
	Currencies []CurrencyTotal `json:"currencies"`
	Groups     []RejectGroup   `json:"groups"`
	Unknown    []string        `json:"unknown_columns,omitempty"`
	Sheets     []string        `json:"sheets,omitempty"`
	Warnings   []string        `json:"warnings,omitempty"`
	Largest    []LargeRow      `json:"largest,omitempty"`
	Threshold  string          `json:"threshold,omitempty"` // the rule that set ApprovalsNeeded
	ETA        string          `json:"eta,omitempty"`
}

// CurrencyTotal is the count and exact total of valid rows in one currency.
type CurrencyTotal struct {
	Code  string `json:"code"`
	Rows  int    `json:"rows"`
	Minor int64  `json:"minor"`
}

// RejectGroup is one reason rows were refused, with how many.
type RejectGroup struct {
	Key    string `json:"key"` // column + kind of problem
	Column string `json:"column"`
	Reason string `json:"reason"`
	Fix    string `json:"fix"`
	Rows   int    `json:"rows"`
}

// LargeRow is one of the largest amounts, for the approver.
type LargeRow struct {
	Row          int    `json:"row"`
	MerchantTxID string `json:"merchant_transaction_id"`
	Code         string `json:"code"`
	Minor        int64  `json:"minor"`
}

// Approval is one approver's decision.
type Approval struct {
	BatchID int64
	UserID  int64
	User    string
	Approve bool
	Comment string
	At      time.Time
}

// AuditEvent is one line of the append-only audit trail.
type AuditEvent struct {
	Seq     int64
	BatchID int64 // 0 for events about no batch (sign-in, users)
	User    string
	Action  string
	Detail  string
	At      time.Time
}

// Decision is what Decide did.
type Decision struct {
	Batch Batch
	// Started is true for exactly one decision per batch: the one that
	// completed its approvals. Only that caller queues the send.
	Started bool
}

// Errors the store returns; statusOf maps them to HTTP status.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrStateChanged: the batch is no longer in the state the action
	// needs (someone else acted first, or the page was stale).
	ErrStateChanged = errors.New("the batch has changed since the page was shown")
	// ErrSelfApproval: nobody approves their own batch.
	ErrSelfApproval = errors.New("you uploaded this batch: another person must approve it")
	// ErrAlreadyDecided: one person counts once.
	ErrAlreadyDecided = errors.New("you have already decided on this batch")
)

// Store keeps users, sessions, batches, approvals and the audit trail.
// Every method that changes a batch decides in one transaction, so two
// requests racing for the same batch get one winner.
type Store interface {
	CreateUser(ctx context.Context, u User) (User, error)
	UserByName(ctx context.Context, name string) (User, error)
	Users(ctx context.Context) ([]User, error)
	// UpdateUser changes role, password hash and disabled flag, and
	// revokes the user's sessions.
	UpdateUser(ctx context.Context, u User) error

	CreateSession(ctx context.Context, tokenHash string, userID int64, expires time.Time) error
	// Session returns the session's user; ErrNotFound when the token is
	// unknown, expired or its user disabled.
	Session(ctx context.Context, tokenHash string, now time.Time) (User, error)
	DeleteSession(ctx context.Context, tokenHash string) error

	NextBatchID(ctx context.Context) (int64, error)
	CreateBatch(ctx context.Context, b Batch) error
	Batch(ctx context.Context, id int64) (Batch, error)
	// Batches lists batches newest first, optionally in one state.
	Batches(ctx context.Context, state State, offset, limit int) ([]Batch, int, error)
	// Revalidate replaces the validation of a batch still in StateUploaded
	// or StateInvalid (a sheet chosen).
	Revalidate(ctx context.Context, b Batch) error
	// Transition moves a batch from one of from to to, recording the audit
	// event in the same transaction; ErrStateChanged when it was not in from.
	Transition(ctx context.Context, id int64, from []State, to State, message string, ev AuditEvent) (Batch, error)
	// Submit moves an uploaded batch to StateAwaiting for its uploader.
	Submit(ctx context.Context, id, userID int64, validOnly bool, ev AuditEvent) (Batch, error)
	// Decide records an approval or rejection by someone other than the
	// uploader and moves the batch when the decision completes it.
	Decide(ctx context.Context, id int64, a Approval) (Decision, error)
	Approvals(ctx context.Context, id int64) ([]Approval, error)

	Audit(ctx context.Context, ev AuditEvent) error
	AuditTrail(ctx context.Context, batchID int64) ([]AuditEvent, error)
}
