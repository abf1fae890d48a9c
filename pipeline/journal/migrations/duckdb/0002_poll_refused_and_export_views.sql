-- Poll state gets a column of its own instead of a prefix in the problem
-- text ("status: …"): when the provider last refused a status query for
-- the row. Rows refused before keep that fact.
ALTER TABLE journal ADD COLUMN poll_refused_at TIMESTAMP;
ALTER TABLE journal_events ADD COLUMN poll_refused_at TIMESTAMP;
UPDATE journal SET poll_refused_at = updated_at WHERE starts_with(problem, 'status: ');
UPDATE journal_events SET poll_refused_at = updated_at WHERE starts_with(problem, 'status: ');

-- The exported views: what other programs (reconcile) may read, by these
-- names and columns only. journal_export is the journal with the latest
-- state changes (journal_events, not yet folded after a killed run)
-- applied, one row per key.
CREATE OR REPLACE VIEW journal_export AS
WITH latest AS (
	SELECT * FROM journal_events
	QUALIFY row_number() OVER (PARTITION BY key ORDER BY seq DESC) = 1
)
SELECT
	j.key, j.provider, j.kind, j.account, j.merchant_transaction_id, j.amount_minor, j.currency,
	if(e.key IS NULL, j.state, e.state)                                 AS state,
	if(e.key IS NULL, j.outcome, e.outcome)                             AS outcome,
	if(e.key IS NULL, j.provider_status, e.provider_status)             AS provider_status,
	if(e.key IS NULL, j.provider_id, e.provider_id)                     AS provider_id,
	if(e.key IS NULL, j.order_id, e.order_id)                           AS order_id,
	if(e.key IS NULL, j.reason_code, e.reason_code)                     AS reason_code,
	if(e.key IS NULL, j.problem, e.problem)                             AS problem,
	if(e.key IS NULL, j.http_status, e.http_status)                     AS http_status,
	if(e.key IS NULL, j.attempts, e.attempts)                           AS attempts,
	j.source_file, j.source_sheet, j.source_row, j.created_at,
	if(e.key IS NULL, j.updated_at, e.updated_at)                       AS updated_at,
	if(e.key IS NULL, j.sent_at, e.sent_at)                             AS sent_at,
	j.terminal, j.transaction_ref, j.order_ref, j.mandate, j.collection_date,
	if(e.key IS NULL, j.provider_amount_minor, e.provider_amount_minor) AS provider_amount_minor,
	if(e.key IS NULL, j.provider_date, e.provider_date)                 AS provider_date,
	if(e.key IS NULL, j.replayed, e.replayed)                           AS replayed,
	if(e.key IS NULL, j.polls, e.polls)                                 AS polls,
	if(e.key IS NULL, j.polled_at, e.polled_at)                         AS polled_at,
	if(e.key IS NULL, j.final_at, e.final_at)                           AS final_at,
	if(e.key IS NULL, j.poll_refused_at, e.poll_refused_at)             AS poll_refused_at
FROM journal AS j
LEFT JOIN latest AS e ON e.key = j.key;

-- The rows the readers refused (values and reasons masked).
CREATE OR REPLACE VIEW rejects_export AS
SELECT source_file, source_sheet, source_row, column_name, value, reason, merchant_transaction_id
FROM rejects;
