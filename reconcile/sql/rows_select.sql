-- Rows of the given categories, in precedence, id and line order.
SELECT category, merchant_transaction_id,
    ledger_amount_minor, ledger_currency, ledger_status,
    provider_amount_minor, provider_currency, provider_status, provider_id, reason,
    source_file, source_sheet, source_row
FROM recon_rows
WHERE list_contains($categories, category)
ORDER BY ord, merchant_transaction_id, ledger_seq NULLS FIRST, provider_seq NULLS FIRST;
