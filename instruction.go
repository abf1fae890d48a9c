// Package paybatch holds the domain shared by every stage: instructions read
// from a batch, exact money, where each row came from, the states a row moves
// through, and the reconciliation categories. It has no dependencies beyond
// the money libraries.
package paybatch

import (
	"fmt"
	"time"
)

// Provider is a payments API paybatch submits to.
type Provider string

const (
	SmartRetry Provider = "smartretry"
	SmarterPay Provider = "smarterpay"
)

// ParseProvider validates a provider name.
func ParseProvider(s string) (Provider, error) {
	switch p := Provider(s); p {
	case SmartRetry, SmarterPay:
		return p, nil
	}
	return "", fmt.Errorf("unknown provider %q (want smartretry or smarterpay)", s)
}

// Kind is the operation one instruction asks for.
type Kind string

const (
	KindRefund    Kind = "refund"     // SmartRetry refund of a completed sale/capture
	KindCapture   Kind = "capture"    // SmartRetry capture of a preauth
	KindVoid      Kind = "void"       // SmartRetry void of a preauth
	KindDDPayment Kind = "dd-payment" // SmarterPay Direct Debit collection
	KindDDCredit  Kind = "dd-credit"  // SmarterPay Direct Credit
)

// Kinds lists every kind in a stable order.
var Kinds = []Kind{KindRefund, KindCapture, KindVoid, KindDDPayment, KindDDCredit}

// ParseKind validates a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q (want one of refund, capture, void, dd-payment, dd-credit)", s)
}

// Provider is the API that executes this kind.
func (k Kind) Provider() Provider {
	switch k {
	case KindDDPayment, KindDDCredit:
		return SmarterPay
	}
	return SmartRetry
}

// Instruction is one row to submit: a single operation with the stable
// identity (provider, account, kind, merchant_transaction_id) its
// idempotency key is derived from.
type Instruction struct {
	Kind     Kind
	Provider Provider
	// MerchantTxID is the merchant's id for this operation and the
	// reconciliation key. For SmarterPay it travels as custom_reference.
	MerchantTxID string
	// Amount is required for every kind except void (and optional for a full
	// capture or refund, where zero Minor means "the full original amount").
	Amount Money

	// SmartRetry targets.
	Terminal       string // terminal_friendly_id, 6 alphanumerics
	TransactionRef string // transaction_reference_id, 8 chars
	OrderRef       string // order_reference_id, 8 chars

	// SmarterPay targets.
	Mandate          string    // mandate id (dd-payment)
	Auddis           string    // AUDDIS reference (dd-credit, or instead of the mandate)
	BankAccount      string    // customer bank account id (dd-credit without auddis)
	CollectionDate   time.Time // collection_date or credit_date (date only, UTC)
	Description      string
	DefaultNarrative string

	Source Source
}

// Account is the provider-side account the operation runs under: the
// SmartRetry terminal, or the SmarterPay mandate / bank account.
func (in Instruction) Account() string {
	switch {
	case in.Terminal != "":
		return in.Terminal
	case in.Mandate != "":
		return in.Mandate
	case in.Auddis != "":
		return in.Auddis
	}
	return in.BankAccount
}
