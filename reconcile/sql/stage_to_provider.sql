-- Move the good rows of a checked results stage into provider (see
-- stage_to_ledger.sql).
INSERT INTO provider
SELECT
    load_no::BIGINT * 10000000000 + src_row AS seq,
    id, amount_minor, currency, class,
    trim(status_text) AS status,
    provider_id, reason,
    source_file, source_sheet, src_row
FROM stage_checked
WHERE ok;
