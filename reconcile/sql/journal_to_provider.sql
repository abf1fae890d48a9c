-- Journal rows become provider lines, in key order.
INSERT INTO provider
SELECT
    $load_no::BIGINT * 10000000000 + row_number() OVER (ORDER BY key) AS seq,
    merchant_transaction_id, amount_minor, currency, class,
    -- card numbers masked (mask.go), as in to_provider.sql
    CASE WHEN strlen(status) >= 13 AND regexp_matches(status, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(status) ELSE status END,
    CASE WHEN strlen(provider_id) >= 13 AND regexp_matches(provider_id, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(provider_id) ELSE provider_id END,
    CASE WHEN regexp_matches(reason, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(reason) ELSE reason END, -- card numbers masked (mask.go)
    source_file, source_sheet, source_row, requested_date, provider_date
FROM journal_lines;
