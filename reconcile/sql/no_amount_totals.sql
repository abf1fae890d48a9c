-- The ledger amount of every id the provider did (class done) without
-- recording an amount (a void), per currency: Summary.NoProviderAmount, left
-- out of the difference. Each ledger line (expecting done: the others are
-- not in the ledger's totals) counts once.
-- Sums are HUGEINT, exact: Run refuses one beyond int64 (totals.go).
SELECT currency, sum(amount_minor)
FROM ledger
SEMI JOIN (
    SELECT merchant_transaction_id FROM provider
    WHERE class = 'done' AND amount_minor IS NULL AND merchant_transaction_id IS NOT NULL
) AS p USING (merchant_transaction_id)
WHERE expected = 'done'
GROUP BY currency;
