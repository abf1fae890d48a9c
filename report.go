package paybatch

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"time"
)

// ReconRow is the reconciliation result for one merchant_transaction_id (or
// one duplicate line of it).
type ReconRow struct {
	Category     Category
	MerchantTxID string

	LedgerAmount   *Money // nil when there is no ledger line
	LedgerStatus   string // the ledger's expected_status, if any
	ProviderAmount *Money // nil when nothing was executed
	ProviderStatus string // provider's raw final status, or the journal state
	ProviderID     string
	// Reason is the provider's reason code or problem detail, or the reader's
	// reject reason.
	Reason string
	Source Source // the batch row the instruction came from, when known
	// RequestedDate is the collection/credit date asked for and
	// ProviderDate the one the provider used (Direct Debit; zero when
	// unknown). They differ when Bacs moved it to a working day.
	RequestedDate, ProviderDate time.Time
}

// DateMoved reports whether the provider used another date than the one
// asked for.
func (r ReconRow) DateMoved() bool {
	return !r.RequestedDate.IsZero() && !r.ProviderDate.IsZero() && !r.ProviderDate.Equal(r.RequestedDate)
}

// CategoryTotals is the count and the exact per-currency totals of a category.
type CategoryTotals struct {
	Count  int64
	Totals Totals
}

// Summary is the outcome of one reconciliation.
type Summary struct {
	Categories map[Category]CategoryTotals
	// MatchRate is matched ids / all ids, a ratio in [0,1] (not money).
	MatchRate      float64
	LedgerTotals   Totals // every ledger line, per currency
	ProviderTotals Totals // every executed operation that happened, per currency
	// NoProviderAmount is the ledger amount of the ids the provider did
	// without recording an amount (a void), per currency: nothing to compare
	// them with, so they are left out of the Difference.
	NoProviderAmount Totals
}

// Difference returns ledger − (ledger amounts the provider records no amount
// for) − provider, per currency, for every currency on either side: a fully
// matched void batch differs by nothing.
func (s Summary) Difference() Totals {
	out := Totals{}
	for code, m := range s.LedgerTotals {
		out[code] = m
	}
	for code, v := range s.NoProviderAmount {
		l, ok := out[code]
		if !ok {
			l = Money{Currency: v.Currency}
		}
		out[code] = Money{Currency: v.Currency, Minor: l.Minor - v.Minor}
	}
	for code, p := range s.ProviderTotals {
		l, ok := out[code]
		if !ok {
			l = Money{Currency: p.Currency}
		}
		out[code] = Money{Currency: p.Currency, Minor: l.Minor - p.Minor}
	}
	return out
}

// InputFile is an input of a run, identified by content.
type InputFile struct {
	Path   string
	SHA256 string
	Rows   int
	Role   string // how the report names it: "batch", "journal", "results", "ledger" ("" → by its place)
}

// RunInfo describes the run a report belongs to.
type RunInfo struct {
	ID     string      // "" → DefaultID
	Inputs []InputFile // the batch files
	// ProviderSide is what was reconciled against the ledger: the journal,
	// or a provider results file (Role says which).
	ProviderSide *InputFile
	Ledger       *InputFile
	Provider     Provider // "smartretry"; several joined by ", "
	Kind         Kind     // "refund"; several joined by ", "
	Started      time.Time
	Version      string
}

// DefaultID names a run by its start time and its inputs' content:
// "20261121T230000Z-9f86d081" (the first 8 hex digits of the SHA-256 of
// every input's SHA-256, ledger included).
func (r RunInfo) DefaultID() string {
	h := sha256.New()
	for _, in := range r.Inputs {
		io.WriteString(h, in.SHA256+"\n")
	}
	for _, in := range []*InputFile{r.ProviderSide, r.Ledger} {
		if in != nil {
			io.WriteString(h, in.SHA256+"\n")
		}
	}
	return r.Started.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(h.Sum(nil))[:8]
}
