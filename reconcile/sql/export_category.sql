-- One category's rows for a Parquet export, from recon_sorted
-- (rows_sorted.sql), in Rows' order. Amounts are BIGINT minor units
-- beside their currency and its exponent (a column cannot carry a different
-- DECIMAL scale per row); amount = amount_minor / 10^exponent. Statuses
-- are masked here (paybatch_mask, mask.go) as the reason is in
-- rows_sorted.sql: card numbers never leave in any column of free text.
COPY (
    SELECT merchant_transaction_id,
        ledger_amount_minor, ledger_currency, lc.exp AS ledger_currency_exponent,
        CASE WHEN strlen(ledger_status) >= 13 AND regexp_matches(ledger_status, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(ledger_status) ELSE ledger_status END AS ledger_status,
        provider_amount_minor, provider_currency, pc.exp AS provider_currency_exponent,
        CASE WHEN strlen(provider_status) >= 13 AND regexp_matches(provider_status, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(provider_status) ELSE provider_status END AS provider_status,
        provider_id, reason,
        coalesce(s.source_file, ld.source_file) AS source_file,
        coalesce(s.source_sheet, ld.source_sheet) AS source_sheet, source_row,
        requested_date, provider_date,
        requested_date IS NOT NULL AND provider_date IS NOT NULL AND provider_date <> requested_date AS date_moved
    FROM recon_sorted AS s
    LEFT JOIN currencies AS lc ON lc.code = ledger_currency
    LEFT JOIN currencies AS pc ON pc.code = provider_currency
    LEFT JOIN loads AS ld ON ld.load_no = s.src_load
    WHERE s.rowid BETWEEN $first AND $last -- the category (rows_ranges.sql)
    ORDER BY s.rowid
) TO $path (FORMAT parquet);
