// Package pipeline is the submission engine: it journals every instruction
// in a DuckDB file before anything leaves, sends each one exactly once under
// a deterministic idempotency key and the provider's rate limit, retries
// transient failures with the same key and body, and polls for final
// statuses. A crashed or interrupted run is resumed by running it again.
//
// The provider clients (pipeline/smartretry, pipeline/smarterpay) satisfy
// the small Provider interface declared here, where it is used.
package pipeline
