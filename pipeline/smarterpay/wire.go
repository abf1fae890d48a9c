package smarterpay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// DateLayout is SmarterPay's 10-character date format (collection_date,
// credit_date).
const DateLayout = "2006-01-02"

// BasePath is the path every SmarterPay Cloud resource sits under: a base
// URL is https://host/service.svc (DefaultBaseURL), and /payment, /credit …
// follow it.
const BasePath = "/service.svc"

// MaxKeyLen is the longest Idempotency-Key SmarterPay accepts (255
// characters, case-sensitive).
const MaxKeyLen = 255

// Pence is an amount in integer pence, as SmarterPay carries it ("no decimal
// point"). It decodes from a JSON number or a JSON string of digits (the
// documented response samples render amounts as strings, requests as
// numbers) and never passes through a float. It encodes as a JSON number;
// StringPence encodes as a string.
type Pence int64

// maxPence bounds amounts far below int64 overflow (same bound as paybatch.Money).
const maxPence = int64(1) << 53

// UnmarshalJSON accepts 2532 or "2532". Decimal points, exponents, signs
// and fractions are refused: SmarterPay amounts are whole pence.
func (p *Pence) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("amount: %w", err)
		}
		b = []byte(s)
	}
	v, err := parsePence(string(b))
	if err != nil {
		return err
	}
	*p = Pence(v)
	return nil
}

func parsePence(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("amount %q: want whole pence (digits only, no decimal point)", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("amount %q: want whole pence (digits only, no decimal point)", s)
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v > maxPence {
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	return v, nil
}

// StringPence is Pence rendered as a JSON string, the way SmarterPay's
// response samples show amounts ("amount": "2532").
type StringPence int64

// MarshalJSON renders the amount as a quoted integer.
func (p StringPence) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(p), 10) + `"`), nil
}

// UnmarshalJSON accepts a number or a string, like Pence.
func (p *StringPence) UnmarshalJSON(b []byte) error {
	var q Pence
	if err := q.UnmarshalJSON(b); err != nil {
		return err
	}
	*p = StringPence(q)
	return nil
}

// PaymentRequest is the body of POST /payment (inside {"payment": …}). The
// field order is fixed: the client's canonical JSON is this struct marshalled.
type PaymentRequest struct {
	Mandate          string `json:"mandate,omitempty"`
	Auddis           string `json:"auddis,omitempty"`
	Amount           Pence  `json:"amount"`
	CollectionDate   string `json:"collection_date"`
	Description      string `json:"description,omitempty"`
	CustomReference  string `json:"custom_reference,omitempty"`
	DefaultNarrative string `json:"default_narrative,omitempty"`
	Metadata         string `json:"metadata,omitempty"`
	UsersReference   string `json:"users_reference,omitempty"`
	RecordType       string `json:"record_type,omitempty"`
}

// Payment is a payment record as GET/POST return it.
type Payment struct {
	ID                  string      `json:"id"`
	Amount              StringPence `json:"amount"`
	Auddis              string      `json:"auddis"`
	Mandate             string      `json:"mandate"`
	CollectionDate      string      `json:"collection_date"`
	CreatedAt           string      `json:"created_at"`
	CustomReference     string      `json:"custom_reference"`
	DefaultNarrative    string      `json:"default_narrative"`
	Description         string      `json:"description"`
	Metadata            string      `json:"metadata"`
	UsersReference      string      `json:"users_reference"`
	PayingBankReference string      `json:"paying_bank_reference"`
	PaymentType         string      `json:"payment_type"`
	RecordType          string      `json:"record_type"`
	RelatedPayment      string      `json:"related_payment"`
	Status              string      `json:"status"`
	// Sandbox additions (the webhook vocabulary, not in the documented REST
	// response): set only on a failed payment.
	BacsReport      string `json:"bacs_report,omitempty"`
	BacsReasonCode  string `json:"bacs_reason_code,omitempty"`
	BacsDescription string `json:"bacs_description,omitempty"`
}

// CreditRequest is the body of POST /credit (inside {"credit": …}).
// SmarterPay's credit carries the merchant reference as "reference" (the
// documented credit field), not custom_reference.
type CreditRequest struct {
	Auddis              string `json:"auddis,omitempty"`
	ClientBankAccountID string `json:"client_bank_account_id,omitempty"`
	BankAccount         string `json:"bank_account,omitempty"`
	Amount              Pence  `json:"amount"`
	Description         string `json:"description"`
	CreditDate          string `json:"credit_date"`
	DefaultNarrative    string `json:"default_narrative,omitempty"`
	Reference           string `json:"reference,omitempty"`
	RTI                 string `json:"rti,omitempty"`
}

// Credit is a credit record as GET/POST return it. The documented copies do
// not show credit response fields; these mirror the request plus the payment
// vocabulary (id, status, created_at, mandate).
type Credit struct {
	ID                  string      `json:"id"`
	Amount              StringPence `json:"amount"`
	Auddis              string      `json:"auddis"`
	Mandate             string      `json:"mandate"`
	BankAccount         string      `json:"bank_account"`
	ClientBankAccountID string      `json:"client_bank_account_id"`
	CreditDate          string      `json:"credit_date"`
	CreatedAt           string      `json:"created_at"`
	Description         string      `json:"description"`
	DefaultNarrative    string      `json:"default_narrative"`
	Reference           string      `json:"reference"`
	RTI                 string      `json:"rti"`
	RecordType          string      `json:"record_type"`
	Status              string      `json:"status"`
	BacsReport          string      `json:"bacs_report,omitempty"`
	BacsReasonCode      string      `json:"bacs_reason_code,omitempty"`
	BacsDescription     string      `json:"bacs_description,omitempty"`
}

// MandateRequest is the body of POST /mandate (inside {"mandate": …}).
type MandateRequest struct {
	CustomerBankAccount string `json:"customer_bank_account"`
	Auddis              string `json:"auddis,omitempty"`
	ClientBankAccountID string `json:"client_bank_account_id,omitempty"`
	DDStatus            string `json:"dd_status,omitempty"`
	AccountValidation   bool   `json:"account_validation,omitempty"`
}

// Mandate is a mandate record as GET/POST return it (the response fields are
// a documented gap; these are the request fields plus id and created_at).
type Mandate struct {
	ID                  string `json:"id"`
	Auddis              string `json:"auddis"`
	DDStatus            string `json:"dd_status"`
	CustomerBankAccount string `json:"customer_bank_account"`
	AccountName         string `json:"account_name"`
	ClientBankAccountID string `json:"client_bank_account_id"`
	CreatedAt           string `json:"created_at"`
}

// ErrorBody is the sandbox's JSON error shape (SmarterPay's own is not
// documented): {"status":422,"error":"Unprocessable Entity","code":
// "idempotency_key_reused","message":"Idempotency keys cannot be reused",
// "field":""}. The client reads it into paybatch.Problem (status → Status,
// error → Title, message → Detail, code → ReasonCode, field → Field).
type ErrorBody struct {
	Status  int    `json:"status"`
	Error   string `json:"error"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Error codes in ErrorBody.Code.
const (
	CodeUnauthorized       = "unauthorized"
	CodeTokenExpired       = "token_expired"
	CodeRateLimited        = "rate_limited"
	CodeKeyInFlight        = "idempotency_key_in_flight"
	CodeKeyReused          = "idempotency_key_reused"
	CodeBadKey             = "idempotency_key_invalid"
	CodeBadRequest         = "bad_request"
	CodeValidation         = "validation_failed"
	CodeDateInPast         = "date_in_past"
	CodeMandateNotFound    = "mandate_not_found"
	CodeMandateNotActive   = "mandate_not_active"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeUnsupportedContent = "unsupported_content_type"
)

// Messages fixed by the documentation.
const (
	MsgRateLimited = "Too many requests. Please try again in 60 seconds."
	MsgKeyInFlight = "A request with the same Idempotency-Key for the same operation is being processed or is outstanding"
	MsgKeyReused   = "Idempotency keys cannot be reused"
)

// Payment and credit status values.
const (
	StatusPendingSubmission = "pending_submission"
	StatusSubmitted         = "submitted"
	StatusSuccessful        = "successful"
	StatusFailed            = "failed"
	StatusCancelled         = "cancelled"
)
