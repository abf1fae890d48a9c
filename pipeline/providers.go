package pipeline

import (
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// The providers paybatch knows. Each one's package holds its client, its
// rules and its documented limits; this file is the one place that maps a
// provider name to them, so a third provider adds a case here and a package
// of its own.

// DefaultLimits are a provider's documented limits per API key/token.
func DefaultLimits(p paybatch.Provider) paybatch.Limits {
	switch p {
	case paybatch.SmartRetry:
		return smartretry.Limits()
	case paybatch.SmarterPay:
		return smarterpay.Limits()
	}
	return paybatch.Limits{}
}

// RulesFor returns a provider's rules for the rows of a batch; now decides
// "today" for rules that depend on it (nil → time.Now). Unknown providers
// have none.
func RulesFor(p paybatch.Provider, now func() time.Time) paybatch.Rules {
	switch p {
	case paybatch.SmartRetry:
		return smartretry.Rules{}
	case paybatch.SmarterPay:
		return smarterpay.Rules{Now: now}
	}
	return nil
}
