-- When the provider last refused a status query for the row.
ALTER TABLE journal ADD COLUMN poll_refused_at timestamptz;

-- The exported views: what other programs (reconcile) may read, by these
-- names and columns only (the same as the DuckDB journal's). State changes
-- are written into journal directly, so journal_export is the table.
CREATE VIEW journal_export AS
SELECT key, provider, kind, account, merchant_transaction_id, amount_minor, currency,
	state, outcome, provider_status, provider_id, order_id, reason_code, problem, http_status, attempts,
	source_file, source_sheet, source_row, created_at, updated_at, sent_at,
	terminal, transaction_ref, order_ref, mandate, collection_date,
	provider_amount_minor, provider_date, replayed, polls, polled_at, final_at, poll_refused_at
FROM journal;

CREATE VIEW rejects_export AS
SELECT source_file, source_sheet, source_row, column_name, value, reason, merchant_transaction_id
FROM rejects;
