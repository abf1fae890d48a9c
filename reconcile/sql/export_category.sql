-- One category's rows for a Parquet export. Amounts are BIGINT minor units
-- beside their currency and its exponent (a column cannot carry a different
-- DECIMAL scale per row); amount = amount_minor / 10^exponent.
COPY (
    SELECT merchant_transaction_id,
        ledger_amount_minor, ledger_currency, lc.exp AS ledger_currency_exponent, ledger_status,
        provider_amount_minor, provider_currency, pc.exp AS provider_currency_exponent,
        provider_status, provider_id, reason,
        source_file, source_sheet, source_row
    FROM recon_rows
    LEFT JOIN currencies AS lc ON lc.code = ledger_currency
    LEFT JOIN currencies AS pc ON pc.code = provider_currency
    WHERE category = $category
    ORDER BY merchant_transaction_id, ledger_seq NULLS FIRST, provider_seq NULLS FIRST
) TO $path (FORMAT parquet);
