// Package smartretry is a faithful, stateful fake of the SmartRetry
// card-payments REST API (an http.Handler): the wire types, rules and
// documented limits it enforces come from the client package
// pipeline/smartretry; this package only plays the provider. It is never
// imported by the paybatch binary's send path — `paybatch sandbox` and the
// tests serve it.
//
// # Sandbox rules
//
// The sandbox serves sale, preauth, capture, void and refund
// (POST /v1/payments/{op}/{terminal}), status
// (GET /v1/payments/status/{terminal}/{transaction_id}) and /health/,
// /health/ready, /health/live. Default credentials: API key sr_test_key for
// terminals ABC123 and TERM01.
//
// Deterministic outcomes (SmartRetry publishes no test triggers; these are
// the sandbox's). For sale, preauth, capture and refund, the amount's minor
// units modulo 100 decide:
//   - 51: 200 "accepted": false, status DECLINED at once — sales and
//     preauths AUTH.INSUFFICIENT_FUNDS (domain PAYER_ACCOUNT), captures and
//     refunds PROCESSOR.DECLINED (domain PROCESSOR);
//   - 52: accepted, PROCESSING, then DECLINED RISK.DECLINED (domain RISK);
//   - 53: accepted, PROCESSING, then ERROR SYSTEM.ERROR (domain SYSTEM);
//   - card 4000000000000002 on a sale or preauth: accepted false, DECLINED
//     AUTH.CARD_DECLINED (domain AUTH);
//   - anything else: accepted, PROCESSING, then APPROVED AUTH.APPROVED.
//
// "Minor units" are the currency's: 25.51 USD, 1051 JPY and 1.051 KWD all
// decline. Accepted operations stay PROCESSING for SandboxConfig.SettleAfter
// (default 2s) and then show their final status. A declined or failed
// refund or capture no longer counts against its original.
//
// # Where the docs are silent: the sandbox's choices (safest reading)
//
//   - Amounts: a JSON number, never a string; plain decimal text only (no
//     sign, exponent or leading zero), checked on the exact text (decoded
//     with UseNumber, never a float). More decimals than the currency has
//     (25.001 USD, 1000.5 JPY, even 25.000 USD) → 400 INVALID_AMOUNT; fewer
//     are accepted because the value is exact (25 = 25.00 USD). Sale and
//     preauth amounts must be 1…999999999 major units; capture and refund
//     amounts must be positive (at least one minor unit).
//   - Ids: transaction_id, order_id and the *_reference_id fields must be
//     exactly 8 letters or digits (the docs fix only the length); terminals 6.
//     Issued ids are "TX"/"OR" + 6 characters, a new transaction_id per
//     operation.
//   - Unknown JSON fields are refused (400, context.field names the field)
//     on capture, void and refund, where a misspelt "amount" would otherwise
//     silently become a full refund; sale and preauth ignore them because
//     their 3-D Secure field names are undocumented. A token may be sent
//     top-level or inside payment_instrument; payment_instrument may sit in
//     order or top-level.
//   - Refunds: only of an APPROVED sale or capture on the same terminal, with
//     matching order_reference_id (else 409 ORDER_REFERENCE_MISMATCH).
//     Refunds still PROCESSING count against the original; the cumulative
//     total may never exceed it (409 REFUND_EXCEEDS_ORIGINAL, with
//     original_amount and refundable_amount in context). A refund currency
//     other than the original's → 400 CURRENCY_MISMATCH. A refund of a
//     preauth, void or refund → 409 INVALID_TRANSACTION_STATE. The original
//     sale's own status does not change after a refund.
//   - Capture and void: only of an APPROVED preauth (a sale → 409
//     INVALID_TRANSACTION_STATE); one capture or one void per preauth; a
//     capture above the authorised amount → 409 CAPTURE_EXCEEDS_AUTHORIZED.
//     A voided preauth reads CANCELLED (AUTH.VOIDED). A void is recorded in
//     the operation log with the preauth's amount (the hold it released).
//   - merchant_transaction_id on a capture or refund equal to the
//     original's → 400.
//   - Idempotency: keys are scoped per API key; a key's request is the path
//     plus the body as canonical JSON (key order and whitespace ignored,
//     number text compared exactly), so the same key on another endpoint or
//     terminal is a 409 IDEMPOTENCY_CONFLICT. Stored: every answer the
//     operation itself produced (200, 400, 403, 404, 409 state conflicts).
//     Never stored: 401 and 429 (decided before the key is looked at —
//     storing a 429 would make the retry pointless), 409
//     IDEMPOTENCY_CONFLICT, 503 RESOURCE_LOCKED and every 5xx. A malformed
//     key (over 255 characters, other than letters, digits, '_' or '-') →
//     400 INVALID_IDEMPOTENCY_KEY. A duplicate that arrives while the
//     first is in flight with the same body waits up to 10s
//     (SandboxConfig.InFlightWait) and then replays, or gets 503
//     RESOURCE_LOCKED; with a different body it gets 409 at once. Both
//     Idempotency-Replayed (documented) and, for the client, the changelog's
//     X-Idempotency-Replayed are understood; the sandbox sends the former.
//   - Rate limits: fixed windows per API key (sim.Limiter: a window opens at
//     the key's first request). Payment operations (sale, preauth, capture,
//     void, refund) share one budget; status another; every authenticated
//     request also spends the overall budget. X-RateLimit-* headers are on
//     every authenticated response and describe the endpoint's own class
//     (or the overall limit when that one refused); X-RateLimit-Reset is the
//     Unix second the window ends, Retry-After the whole seconds until then
//     (at least 1). Health checks and 401s carry none (there is no key).
//   - Errors: every non-2xx is application/problem+json with type, title,
//     status, detail, reason_code and, when one field is at fault,
//     context.field. Reason codes beyond the four documented ones are listed
//     as Reason* constants. Content-Type other than JSON → 415.
//   - Status responses have no top-level merchant_transaction_id (as in the
//     docs); order.merchant_order_id is the order's merchant_order_id or, if
//     none was sent, the first transaction's merchant_transaction_id. Cards
//     are kept only as BIN and last four digits; the CVV is never stored.
package smartretry
