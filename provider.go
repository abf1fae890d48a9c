package paybatch

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is the canonical wire form of one instruction: the same instruction
// always yields byte-identical Body, so its hash identifies the content sent
// under an idempotency key.
type Request struct {
	Method string // "POST"
	Path   string // relative to the provider base URL, e.g. "/v1/payments/refund/ABC123"
	Body   []byte // canonical JSON
}

// Submission is a provider's answer to a submitted operation that was not
// an error (SmartRetry 200; SmarterPay 200/201).
type Submission struct {
	HTTPStatus int
	// Accepted is false when the provider declined the operation outright
	// (SmartRetry 200 with "accepted": false). A decline is not an error.
	Accepted   bool
	ProviderID string // SmartRetry transaction_id; SmarterPay payment or credit id
	OrderID    string // SmartRetry order_id
	Replayed   bool   // the provider replayed a stored response for this key
	// Status is set when the response already carries a status (SmarterPay
	// returns one; a payment on a cancelled mandate comes back cancelled).
	Status *ProviderStatus
	// Amount is what the provider recorded when the response says (a
	// cancelled-mandate payment is recorded with amount 0).
	Amount *Money
	// Date is the collection/credit date the provider stored (SmarterPay
	// rolls dates forward to the next collectable banking day).
	Date time.Time
}

// ProviderRef identifies an executed operation for a status lookup.
type ProviderRef struct {
	Kind     Kind
	Terminal string // SmartRetry terminal
	ID       string // SmartRetry transaction_id; SmarterPay payment or credit id
}

// ErrorClass tells the submission engine what to do about a provider error.
type ErrorClass int

const (
	// ClassTransient: 5xx, connection errors, timeouts, SmartRetry 503
	// RESOURCE_LOCKED, SmarterPay 409 (key still in flight). Retry with the
	// same key and body.
	ClassTransient ErrorClass = iota + 1
	// ClassRateLimited: 429. Pause every worker for RetryAfter, then retry.
	ClassRateLimited
	// ClassAuth: 401, 403, 498. Stop the run; nothing more can succeed.
	ClassAuth
	// ClassRejected: 400, 404 and other 4xx. The request is wrong; never retried.
	ClassRejected
	// ClassConflict: SmartRetry 409 IDEMPOTENCY_CONFLICT, SmarterPay 422. The
	// key was used with other content; never retried.
	ClassConflict
	// ClassConfig: the answer shows the endpoint is not the provider's API —
	// a 4xx without the provider's error body (a 404 from a wrong path), an
	// HTML page, a redirect, or a DNS, TLS or connection failure before the
	// endpoint ever answered. The request never reached the provider: stop
	// the run, leave the row unsent, and name the setting to fix.
	ClassConfig
)

func (c ErrorClass) String() string {
	switch c {
	case ClassTransient:
		return "transient"
	case ClassRateLimited:
		return "rate-limited"
	case ClassAuth:
		return "auth"
	case ClassRejected:
		return "rejected"
	case ClassConflict:
		return "conflict"
	case ClassConfig:
		return "configuration"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Problem is an RFC 7807-style error body (SmartRetry) or the closest
// equivalent a provider gives.
type Problem struct {
	Type       string `json:"type,omitempty"`
	Title      string `json:"title,omitempty"`
	Status     int    `json:"status,omitempty"`
	Detail     string `json:"detail,omitempty"`
	ReasonCode string `json:"reason_code,omitempty"`
	Field      string `json:"field,omitempty"` // context.field when given
}

// Excerpt is the start of a response body that is not the provider's
// documented error (an HTML error page, a proxy's text) as a problem's
// detail: its first n bytes, cut back to a character boundary, bytes that
// are not UTF-8 replaced by U+FFFD, spaces trimmed. A problem is journaled, and a
// journal stores text only: a body cut inside a character (or not text at
// all) once stopped a run at its next commit.
func Excerpt(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
		// Drop a character the cut left incomplete (at most 3 bytes).
		for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
			if utf8.RuneStart(b[i]) {
				if !utf8.FullRune(b[i:]) {
					b = b[:i]
				}
				break
			}
		}
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
}

// ProviderError is any failed exchange with a provider. It never contains
// credentials.
type ProviderError struct {
	Class      ErrorClass
	HTTPStatus int           // 0 for transport errors
	Problem    Problem       // zero when there was no response body
	RetryAfter time.Duration // for ClassRateLimited (and 503 when the provider says)
	Err        error         // transport error, if any
}

func (e *ProviderError) Error() string {
	msg := fmt.Sprintf("provider error (%s)", e.Class)
	if e.HTTPStatus != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.HTTPStatus)
	}
	if e.Problem.ReasonCode != "" {
		msg += " " + e.Problem.ReasonCode
	}
	if e.Problem.Detail != "" {
		msg += ": " + e.Problem.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ProviderError) Unwrap() error { return e.Err }

// RateInfo is what a response said about the caller's rate-limit budget
// (X-RateLimit-Limit/-Remaining/-Reset). Zero values mean "not given".
type RateInfo struct {
	Limit     int
	Remaining int
	Reset     time.Time
	Known     bool
	// Query is set when the response answered a status query (a GET), so
	// the limit is the provider's status-query limit; otherwise it answered
	// a payment operation.
	Query bool
}
