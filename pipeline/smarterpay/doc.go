// Package smarterpay owns the SmarterPay Cloud (UK Bacs Direct Debit /
// Direct Credit) wire contract (../../../shared/api/smarterpay.md): request
// and response types, a Client the submission engine uses (Prepare, Send,
// Status, Lookup), the England and Wales banking calendar, the
// AUDDIS rules, Bacs "today" in London, its documented rate limit (Limits)
// and its wire formats.
//
// The fake of the API lives in pipeline/sandbox/smarterpay, never here.
package smarterpay
