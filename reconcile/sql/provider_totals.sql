-- Every operation that was executed and happened (class done), per currency.
-- Sums are HUGEINT, exact: Run refuses one beyond int64 (totals.go).
SELECT currency, sum(amount_minor)
FROM provider
WHERE class = 'done' AND amount_minor IS NOT NULL
GROUP BY currency;
