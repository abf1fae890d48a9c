-- Journal rows become provider lines, in key order.
INSERT INTO provider
SELECT
    $load_no::BIGINT * 10000000000 + row_number() OVER (ORDER BY key) AS seq,
    merchant_transaction_id, amount_minor, currency, class, status, provider_id,
    CASE WHEN regexp_matches(reason, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(reason) ELSE reason END, -- card numbers masked (mask.go)
    source_file, source_sheet, source_row, requested_date, provider_date
FROM journal_lines;
