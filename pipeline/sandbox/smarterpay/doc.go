// Package smarterpay is a stateful fake of the SmarterPay Cloud (UK Bacs
// Direct Debit / Direct Credit) API: an http.Handler for paths under
// /service.svc/. The wire types, the banking calendar, the AUDDIS rules and
// the documented limit it enforces come from the client package
// pipeline/smarterpay; this package only plays the provider.
//
// The contract is ../../../shared/api/smarterpay.md. Where it is silent or
// contradicts itself, the sandbox takes the safest reading:
//
//   - Reference: SmarterPay has no merchant_transaction_id. A payment
//     carries it as custom_reference, a credit as reference (the documented
//     credit field); both are echoed in responses and webhooks and are the
//     list filters Lookup uses.
//   - Dates: "today" is the London calendar date and never counts as one of
//     the 3 clear banking days (the stricter of "3 clear banking days" and
//     the release notes' "3 working days counting today, before 22:00"), so a
//     date the sandbox keeps is valid under either reading. A date before
//     today → 400; a weekend, England and Wales bank holiday (observed
//     dates, github.com/rickar/cal/v2/gb) or a date too soon → the next
//     collectable banking day, stored and returned. Credits follow the same
//     rule (Bacs Direct Credit runs on the same 3-day cycle).
//   - Cancelled mandate (cancelled, cancelled by payer, cancelled by
//     originator): the create succeeds with 201 and the record is cancelled
//     with amount 0 — the concrete behaviour the payment page describes. A
//     mandate on hold, or an unknown mandate/auddis, is a 400.
//   - Amounts: requests take integer pence as a JSON number or a digit
//     string; decimals, exponents and signs are a 400. Responses render
//     amounts as strings ("2532"), like the documented samples; the client
//     accepts both and never decodes through float64.
//   - Create lists: POST /payment {"payments":[…]} (and /credit
//     {"credits":[…]}) → 201 {"payments":[…]}. The list is validated as a
//     whole; one bad item fails the request with a 400 naming
//     payments[i].field and nothing is created. An Idempotency-Key covers the
//     whole list: a replay returns the whole stored list, and each executed
//     item is recorded in the operation log under key#i.
//   - Idempotency: keys are scoped per bearer token (not per endpoint),
//     case-sensitive, at most 255 characters of the documented header-value
//     alphabet (anything else → 400), kept 24 h from
//     the first request. The request is identified by method, path and the
//     body's exact bytes. Same key while the first is processing → 409; other
//     endpoint or payload → 422 "Idempotency keys cannot be reused" (even
//     while the first is still processing: the mismatch is final, the 409 is
//     not); same request → the stored status and body with
//     idempotency-replay: true. Stored: every answer of the operation itself,
//     errors included (a 400 replays as the same 400), never a 5xx.
//     Answered before the store and never stored: 401, 498, 429, a bad
//     Content-Type or Idempotency-Key, an unknown route.
//   - Rate limit: 1000 requests per 60 s per token in fixed windows opened
//     by a token's first request; 429 carries the documented message and a
//     Retry-After header (our addition, seconds to the window's end).
//     X-RateLimit-Limit/-Remaining/-Reset (Unix seconds) are also our
//     addition, sent on every authenticated answer.
//   - Auth: Authorization: Bearer; unknown or missing → 401, an expired
//     token → 498. TLS_Required is not simulated: the sandbox is loopback.
//   - Errors: SmarterPay's error body is undocumented; the sandbox answers
//     every error as ErrorBody {"status","error","code","message","field"}.
//   - Status clock: pending_submission until SubmitAfter after creation,
//     submitted until SettleAfter more, then successful or failed. Failure
//     triggers by amount in pence modulo 100: payments …51 → ARUDD 0 "Refer
//     to payer", …52 → ARUDD 1 "Instruction cancelled", …53 → ARUDD B
//     "Account closed"; credits …51 → ARUCS 5 "No account", …52 → ARUCS B
//     "Account closed", …53 → ARUCS 2 "Beneficiary deceased". Failed records
//     carry bacs_report, bacs_reason_code and bacs_description (the webhook
//     vocabulary; a sandbox addition to the REST response).
//   - Lists: GET filters are exact matches (payment: custom_reference,
//     status, mandate, auddis, collection_date; credit: reference, status,
//     mandate, auddis, bank_account, credit_date; mandate: auddis, dd_status,
//     customer_bank_account); an unknown filter is a 400 so a typo never
//     lists everything. No paging.
//   - Credits need auddis or bank_account (the sandbox never falls back to
//     a default account); a bank_account must belong to a known mandate.
//   - Mandates: POST /mandate checks the documented AUDDIS rules and
//     uniqueness; any customer_bank_account id is accepted (bank accounts are
//     not simulated). PUT /mandate/{id} changes dd_status only; cancelling
//     cancels (amount 0) the mandate's payments and credits still
//     pending_submission, as documented. PUT on payments and credits (update
//     rules truncated in the docs) is not simulated: 405.
package smarterpay
