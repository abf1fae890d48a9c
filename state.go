package paybatch

import "time"

// State is where one instruction stands in the submission lifecycle. It is
// written to the journal before each transition takes effect:
//
//	pending → sending → accepted → (final: succeeded | unsuccessful)
//	                  ↘ declined | rejected | conflict | failed
type State string

const (
	StatePending  State = "pending"  // read and journaled; nothing sent
	StateSending  State = "sending"  // intent recorded; a request may have left
	StateAccepted State = "accepted" // provider took it; final status not yet known
	StateDeclined State = "declined" // provider declined it (SmartRetry 200 accepted:false)
	StateRejected State = "rejected" // provider refused the request (400/404): fix and resubmit
	StateConflict State = "conflict" // same merchant_transaction_id with other content, or 409/422 key reuse
	StateFailed   State = "failed"   // gave up after bounded retries; resumable
	StateFinal    State = "final"    // a final provider status is known (see Outcome)
)

// Terminal reports whether no further submission work is needed for s.
// StateAccepted still needs polling; StateFailed can be resumed.
func (s State) Terminal() bool {
	switch s {
	case StateDeclined, StateRejected, StateConflict, StateFinal:
		return true
	}
	return false
}

// Outcome is a provider status normalised across providers.
type Outcome string

const (
	OutcomePending   Outcome = "pending"   // PROCESSING / UNKNOWN; pending_submission / submitted
	OutcomeSucceeded Outcome = "succeeded" // APPROVED; successful
	OutcomeFailed    Outcome = "failed"    // DECLINED / ERROR; failed
	OutcomeCancelled Outcome = "cancelled" // CANCELLED; cancelled
)

// Final reports whether the outcome will not change any more.
func (o Outcome) Final() bool { return o != OutcomePending && o != "" }

// ProviderStatus is a provider's answer to "what happened to this operation".
type ProviderStatus struct {
	Raw        string  // provider's own status value, e.g. "APPROVED", "successful"
	Outcome    Outcome // normalised
	ReasonCode string  // SmartRetry reasonCode / Bacs reason code
	Domain     string  // SmartRetry status domain
	Detail     string  // human-readable description of the reason ("" for a success)
	Amount     *Money  // the amount the provider records, when it says
	// Date is the collection or credit date the provider will use or used
	// (SmarterPay rolls a date forward to the next collectable banking day);
	// zero when the provider does not say.
	Date time.Time
}
