-- Benchmark baseline: the plainest full join of already-loaded tables with
-- per-currency sums, no categories. Not used by reconcile itself.
SELECT coalesce(l.currency, p.currency) AS currency, count(*),
    sum(l.amount_minor)::BIGINT, sum(p.amount_minor)::BIGINT
FROM ledger AS l
FULL OUTER JOIN provider AS p ON p.merchant_transaction_id = l.merchant_transaction_id
GROUP BY ALL;
