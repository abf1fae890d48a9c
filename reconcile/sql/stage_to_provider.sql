-- Move the rows of a checked results stage into provider in one pass (see
-- stage_to_ledger.sql: a row with a problem fails the whole INSERT).
INSERT INTO provider
SELECT
    CASE WHEN ok THEN load_no::BIGINT * 10000000000 + src_row END AS seq,
    id, amount_minor, currency, class,
    trim(status_text) AS status,
    provider_id, reason,
    NULL, NULL, src_row -- file and sheet: the loads row of load_no
FROM stage_checked
WHERE NOT blank;
