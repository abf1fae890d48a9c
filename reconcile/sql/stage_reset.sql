-- Every input file is first loaded here as text, one column per role, then
-- checked (stage_checked.sql) and converted into ledger or provider.
CREATE OR REPLACE TABLE stage (
    merchant_transaction_id VARCHAR, amount VARCHAR, currency VARCHAR,
    status VARCHAR, expected_status VARCHAR, transaction_id VARCHAR,
    type VARCHAR, date VARCHAR, reason VARCHAR,
    src_row INTEGER -- set for XLSX (blank rows keep their numbers); NULL otherwise
);

CREATE OR REPLACE VIEW stage_src AS
SELECT merchant_transaction_id, amount, currency, status, expected_status,
    transaction_id, type, date, reason,
    NULL::BIGINT AS amount_v, NULL::INTEGER AS amount_frac, NULL::BOOLEAN AS amount_present,
    coalesce(src_row, rowid + getvariable('stage_first_row'))::INTEGER AS src_row
FROM stage;
