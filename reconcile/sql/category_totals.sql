-- Totals of each category per currency, in minor units (never summed across
-- currencies). An id counts with its ledger lines when it has any, otherwise
-- with its provider lines (its executed ones, or its rejected ones when
-- nothing was executed). Lines without an amount add nothing.
SELECT r.category, x.currency, sum(x.amount_minor)::BIGINT
FROM recon AS r
JOIN ledger AS x ON x.merchant_transaction_id = r.merchant_transaction_id
WHERE r.has_ledger
GROUP BY ALL
UNION ALL
SELECT r.category, x.currency, sum(x.amount_minor)::BIGINT
FROM recon AS r
JOIN provider AS x ON x.merchant_transaction_id = r.merchant_transaction_id
WHERE NOT r.has_ledger
  AND (x.class <> 'rejected' OR r.n_exec = 0)
  AND x.amount_minor IS NOT NULL
GROUP BY ALL;
