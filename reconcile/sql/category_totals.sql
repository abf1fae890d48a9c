-- Totals of each category per currency, in minor units (never summed across
-- currencies). An id counts with its ledger lines when it has any, otherwise
-- with its provider lines (its executed ones, or its rejected ones when
-- nothing was executed). Lines without an amount add nothing.
--
-- Single-line ids carry their amount in recon (total_amount); only the few
-- multi-line ids (duplicates, rejections) go back to their lines.
-- Sums are HUGEINT, exact: Run refuses one beyond int64 (totals.go).
SELECT category, total_currency, sum(total_amount)
FROM recon
WHERE NOT multi_line AND total_amount IS NOT NULL
GROUP BY ALL
UNION ALL
SELECT r.category, x.currency, sum(x.amount_minor)
FROM recon AS r
JOIN ledger AS x ON x.merchant_transaction_id = r.merchant_transaction_id
WHERE r.multi_line AND r.has_ledger
GROUP BY ALL
UNION ALL
SELECT r.category, x.currency, sum(x.amount_minor)
FROM recon AS r
JOIN provider AS x ON x.merchant_transaction_id = r.merchant_transaction_id
WHERE r.multi_line AND NOT r.has_ledger
  AND (x.class NOT IN ('rejected', 'refused') OR r.n_exec = 0)
  AND x.amount_minor IS NOT NULL
GROUP BY ALL;
