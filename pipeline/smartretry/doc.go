// Package smartretry owns the wire contract of the SmartRetry card-payments
// REST API (../../../shared/api/smartretry.md): its request and response
// types, a Client the submission engine uses (Prepare, Send, Status),
// the checks of its id formats and its
// documented rate limits (Limits).
//
// The fake of the API lives in pipeline/sandbox/smartretry, never here, so
// the client's package carries no test server.
package smartretry
