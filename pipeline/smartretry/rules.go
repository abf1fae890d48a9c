package smartretry

import (
	"time"

	"github.com/paybatch/paybatch"
)

// Limits are SmartRetry's documented rate limits per API key: 100 payment
// operations, 500 status queries and 1,000 requests of any kind per second
// (api/smartretry.md §5).
func Limits() paybatch.Limits {
	return paybatch.Limits{
		Submit:  paybatch.Limit{N: 100, Per: time.Second},
		Status:  paybatch.Limit{N: 500, Per: time.Second},
		Overall: paybatch.Limit{N: 1000, Per: time.Second},
	}
}
