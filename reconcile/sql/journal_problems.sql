-- Journal rows reconciliation cannot read: an unknown state/outcome, no
-- merchant_transaction_id, or an amount without a currency.
SELECT key, state, coalesce(outcome, ''),
    CASE
        WHEN class IS NULL THEN 'unknown state/outcome'
        WHEN merchant_transaction_id IS NULL THEN 'no merchant_transaction_id'
        ELSE 'amount without currency'
    END AS reason
FROM journal_lines
WHERE class IS NULL
   OR merchant_transaction_id IS NULL
   OR (amount_minor IS NOT NULL AND currency IS NULL)
ORDER BY key
LIMIT 20;
