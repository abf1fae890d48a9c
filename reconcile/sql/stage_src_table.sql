-- The rows to check, read from the stage table (CSV and XLSX loads). A row
-- number is the sheet's (src_row, XLSX) or the stage order (rowid, CSV).
CREATE OR REPLACE VIEW stage_src AS
SELECT merchant_transaction_id, amount, currency, status, expected_status,
    transaction_id, type, date, reason,
    NULL::BIGINT AS amount_v, NULL::INTEGER AS amount_frac, NULL::BOOLEAN AS amount_present,
    coalesce(src_row, rowid + getvariable('stage_first_row'))::INTEGER AS src_row
FROM stage;
