package paybatch

// Category is where one merchant_transaction_id lands in reconciliation.
// Each id lands in exactly one, by the precedence of Categories.
type Category string

const (
	CatRejectedByProvider  Category = "rejected_by_provider"  // sent; the provider refused it (4xx, 409 REFUND_EXCEEDS_ORIGINAL, …) and executed nothing
	CatRejectedBeforeSend  Category = "rejected_before_send"  // never sent: refused by paybatch (reader reject, local conflict)
	CatDuplicateAtProvider Category = "duplicate_at_provider" // the provider executed one id more than once
	CatDuplicateInLedger   Category = "duplicate_in_ledger"   // the ledger has the id more than once
	CatMissingAtProvider   Category = "missing_at_provider"   // in the ledger, never executed
	CatMissingInLedger     Category = "missing_in_ledger"     // executed, no ledger line
	CatPending             Category = "pending"               // no final provider status yet
	CatCurrencyMismatch    Category = "currency_mismatch"
	CatStatusMismatch      Category = "status_mismatch" // ledger expects done; provider declined/failed/cancelled
	CatAmountMismatch      Category = "amount_mismatch"
	CatMatched             Category = "matched"
)

// Categories is the precedence order: an id is put in the first category
// whose condition holds.
var Categories = []Category{
	CatRejectedByProvider, CatRejectedBeforeSend, CatDuplicateAtProvider, CatDuplicateInLedger,
	CatMissingAtProvider, CatMissingInLedger, CatPending,
	CatCurrencyMismatch, CatStatusMismatch, CatAmountMismatch, CatMatched,
}
