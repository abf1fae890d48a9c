-- Journal rows become provider lines, in key order.
INSERT INTO provider
SELECT
    $load_no::BIGINT * 10000000000 + row_number() OVER (ORDER BY key) AS seq,
    merchant_transaction_id, amount_minor, currency, class,
    -- card numbers masked (mask.go), as in to_provider.sql
    mask_cards(status),
    mask_cards(provider_id),
    mask_cards(reason), -- card numbers masked (mask.go)
    source_file, source_sheet, source_row, requested_date, provider_date
FROM journal_lines;
