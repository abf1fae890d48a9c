-- The batch rows the readers refused never reached the provider: they are
-- rejected lines (an id-less reject becomes its own rejected_before_send row).
INSERT INTO provider
SELECT
    $load_no::BIGINT * 10000000000 + 5000000000
        + row_number() OVER (ORDER BY source_file, source_sheet, source_row, column_name) AS seq,
    nullif(trim(merchant_transaction_id), ''),
    NULL, NULL, 'rejected', 'rejected by reader', NULL,
    -- card numbers in the value and the reason masked (mask.go)
    mask_cards(concat_ws(': ', nullif(column_name, ''),
        CASE WHEN coalesce(value, '') <> '' THEN '"' || value || '"' END, reason)),
    source_file, source_sheet, source_row, NULL, NULL
FROM journal_db.rejects_export
WHERE /*scope*/ true; -- LoadJournalScope: the run's input files only
