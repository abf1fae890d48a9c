package paybatch

import "time"

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
	ProviderTotals Totals // every executed operation, per currency
}

// Difference returns ledger − provider per currency, for every currency on
// either side.
func (s Summary) Difference() Totals {
	out := Totals{}
	for code, m := range s.LedgerTotals {
		out[code] = m
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
}

// RunInfo describes the run a report belongs to.
type RunInfo struct {
	Inputs   []InputFile
	Ledger   *InputFile
	Provider Provider
	Kind     Kind
	Started  time.Time
	Version  string
}
