package smartretry

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/paybatch/paybatch"
)

// Transaction types.
const (
	TypeSale    = "sale"
	TypePreauth = "preauth"
	TypeCapture = "capture"
	TypeVoid    = "void"
	TypeRefund  = "refund"
)

// Status values of the status object.
const (
	StatusApproved   = "APPROVED"
	StatusProcessing = "PROCESSING"
	StatusDeclined   = "DECLINED"
	StatusError      = "ERROR"
	StatusCancelled  = "CANCELLED"
	StatusUnknown    = "UNKNOWN"
)

// Reason codes of problem bodies. The first four are documented; the rest
// are the sandbox's choice where the docs are silent.
const (
	ReasonInvalidAPIKey       = "INVALID_API_KEY"
	ReasonRateLimitExceeded   = "RATE_LIMIT_EXCEEDED"
	ReasonIdempotencyConflict = "IDEMPOTENCY_CONFLICT"
	ReasonResourceLocked      = "RESOURCE_LOCKED"

	ReasonTerminalNotAllowed  = "TERMINAL_NOT_ALLOWED"
	ReasonValidation          = "VALIDATION_ERROR"
	ReasonInvalidAmount       = "INVALID_AMOUNT"
	ReasonInvalidIdemKey      = "INVALID_IDEMPOTENCY_KEY"
	ReasonNotFound            = "NOT_FOUND"
	ReasonTransactionNotFound = "TRANSACTION_NOT_FOUND"
	ReasonOrderMismatch       = "ORDER_REFERENCE_MISMATCH"
	ReasonCurrencyMismatch    = "CURRENCY_MISMATCH"
	ReasonInvalidState        = "INVALID_TRANSACTION_STATE"
	ReasonRefundExceeds       = "REFUND_EXCEEDS_ORIGINAL"
	ReasonCaptureExceeds      = "CAPTURE_EXCEEDS_AUTHORIZED"
	ReasonMethodNotAllowed    = "METHOD_NOT_ALLOWED"
	ReasonUnsupportedMedia    = "UNSUPPORTED_MEDIA_TYPE"
)

// Problem is the RFC 7807 error body SmartRetry sends with every non-2xx
// response (Content-Type application/problem+json).
type Problem struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Status     int            `json:"status"`
	Detail     string         `json:"detail"`
	Instance   string         `json:"instance,omitempty"`
	ReasonCode string         `json:"reason_code"`
	Context    map[string]any `json:"context,omitempty"`
}

// Field returns context.field, when the problem names one.
func (p Problem) Field() string {
	if f, ok := p.Context["field"].(string); ok {
		return f
	}
	return ""
}

// PaymentResponse is the 200 acknowledgement of every payment POST.
// MerchantTransactionID is absent for a void.
type PaymentResponse struct {
	TransactionID         string `json:"transaction_id"`
	OrderID               string `json:"order_id"`
	MerchantTransactionID string `json:"merchant_transaction_id,omitempty"`
	Accepted              bool   `json:"accepted"`
}

// RefundRequest is the body of POST /v1/payments/refund/{terminal}. Amount
// nil means the full original amount.
type RefundRequest struct {
	TransactionReferenceID string      `json:"transaction_reference_id"`
	OrderReferenceID       string      `json:"order_reference_id"`
	MerchantTransactionID  string      `json:"merchant_transaction_id,omitempty"`
	Amount                 json.Number `json:"amount,omitempty"`
	Currency               string      `json:"currency,omitempty"`
}

// CaptureRequest is the body of POST /v1/payments/capture/{terminal}.
type CaptureRequest struct {
	TransactionReferenceID string      `json:"transaction_reference_id"`
	OrderReferenceID       string      `json:"order_reference_id"`
	MerchantTransactionID  string      `json:"merchant_transaction_id,omitempty"`
	Amount                 json.Number `json:"amount,omitempty"`
	Description            string      `json:"description,omitempty"`
}

// VoidRequest is the body of POST /v1/payments/void/{terminal}. A void
// carries no merchant_transaction_id.
type VoidRequest struct {
	TransactionReferenceID string `json:"transaction_reference_id"`
	OrderReferenceID       string `json:"order_reference_id"`
}

// PaymentInstrument is a card or stored token inside a sale or preauth.
type PaymentInstrument struct {
	PaymentMethod      string `json:"payment_method,omitempty"`
	CardNumber         string `json:"card_number,omitempty"`
	ExpiryMonth        int    `json:"expiry_month,omitempty"`
	ExpiryYear         int    `json:"expiry_year,omitempty"`
	CardCardholderName string `json:"card_cardholder_name,omitempty"`
	Token              string `json:"token,omitempty"`
}

// Payer is the optional payer of a sale or preauth.
type Payer struct {
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Email     string `json:"email,omitempty"`
}

// Order is the order object of a sale or preauth.
type Order struct {
	MerchantOrderID   string             `json:"merchant_order_id,omitempty"`
	PaymentInstrument *PaymentInstrument `json:"payment_instrument,omitempty"`
	Payer             *Payer             `json:"payer,omitempty"`
	Description       string             `json:"description,omitempty"`
}

// SaleRequest is the body of a sale or a preauth.
type SaleRequest struct {
	MerchantTransactionID string             `json:"merchant_transaction_id"`
	Amount                json.Number        `json:"amount"`
	Currency              string             `json:"currency"`
	Order                 *Order             `json:"order,omitempty"`
	PaymentInstrument     *PaymentInstrument `json:"payment_instrument,omitempty"` // top-level form seen in the terminals page
	Token                 string             `json:"token,omitempty"`
	CVV                   string             `json:"cvv,omitempty"`
	Description           string             `json:"description,omitempty"`
	OrderID               string             `json:"order_id,omitempty"`
}

// StatusObject is the status of a transaction.
type StatusObject struct {
	Status      string `json:"status"`
	ReasonCode  string `json:"reasonCode"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Domain      string `json:"domain"`
}

// StatusInstrument is the masked instrument in a status response.
type StatusInstrument struct {
	PaymentMethod         string `json:"payment_method,omitempty"`
	CardCardholderName    string `json:"card_cardholder_name,omitempty"`
	CardCardLastFourDigit string `json:"card_card_last_four_digit,omitempty"`
	CardBin               string `json:"card_bin,omitempty"`
	ExpirationDate        string `json:"expiration_date,omitempty"`
}

// StatusOrder is the order object in a status response.
type StatusOrder struct {
	OrderID           string            `json:"order_id"`
	MerchantOrderID   string            `json:"merchant_order_id,omitempty"`
	Description       string            `json:"description,omitempty"`
	PaymentInstrument *StatusInstrument `json:"payment_instrument,omitempty"`
}

// StatusResponse is the body of GET /v1/payments/status/{terminal}/{id}.
// Amount is the exact JSON number text.
type StatusResponse struct {
	TransactionID     string       `json:"transaction_id"`
	Type              string       `json:"type"`
	Amount            json.Number  `json:"amount"`
	Currency          string       `json:"currency"`
	AuthorizationCode string       `json:"authorization_code,omitempty"`
	ARN               string       `json:"arn,omitempty"`
	AttemptNumber     int          `json:"attempt_number"`
	CreatedAt         string       `json:"created_at"`
	UpdatedAt         string       `json:"updated_at"`
	Status            StatusObject `json:"status"`
	Order             StatusOrder  `json:"order"`
}

// ParseAmount reads a JSON number's text as an exact amount in cur. It
// accepts plain decimals only (no sign, no exponent) and refuses more
// decimals than the currency has; fewer are fine ("25" and "25.5" are
// 25.00 and 25.50 USD). It never goes through a float.
func ParseAmount(num string, cur paybatch.Currency) (paybatch.Money, error) {
	if num == "" {
		return paybatch.Money{}, fmt.Errorf("%w: empty amount", paybatch.ErrBadAmount)
	}
	intPart, frac, hasDot := strings.Cut(num, ".")
	if !allDigits(intPart) || (hasDot && !allDigits(frac)) {
		return paybatch.Money{}, fmt.Errorf("%w: %s is not a plain positive decimal number (no sign or exponent)", paybatch.ErrBadAmount, num)
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return paybatch.Money{}, fmt.Errorf("%w: %s has a leading zero, which is not a JSON number", paybatch.ErrBadAmount, num)
	}
	if len(frac) > cur.Exponent() {
		return paybatch.Money{}, fmt.Errorf("%w: %s has %d decimal places; %s allows %d", paybatch.ErrBadAmount, num, len(frac), cur.Code(), cur.Exponent())
	}
	return paybatch.ParseMoney(num, cur)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// ValidTerminal reports whether s is a terminal_friendly_id: exactly 6
// alphanumeric characters.
func ValidTerminal(s string) bool { return len(s) == 6 && isAlnum(s) }

// ValidID reports whether s has the form of a SmartRetry-issued id
// (transaction_id, order_id): exactly 8 alphanumeric characters.
func ValidID(s string) bool { return len(s) == 8 && isAlnum(s) }

// ValidIdempotencyKey reports whether k is an acceptable Idempotency-Key:
// 1–255 letters, digits, '_' or '-'.
func ValidIdempotencyKey(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
