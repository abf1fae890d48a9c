-- Benchmark baseline: the reconciliation as plain SQL over tables that are
-- already loaded and typed (ledger, provider), as one would write it by hand:
-- every line grouped by id once (so duplicates are seen), each id
-- categorised, counts and totals per category and currency. No checks, no
-- packing, no rejected lines, no tolerance. Not used by reconcile itself.
WITH lines AS (
    SELECT merchant_transaction_id AS id, 1 AS l, amount_minor AS v, currency AS cur, expected AS cls FROM ledger
    UNION ALL
    SELECT merchant_transaction_id, 0, amount_minor, currency, class FROM provider
),
per_id AS (
    SELECT id, count(*) AS n, sum(l) AS nl,
        any_value(v)   FILTER (WHERE l = 1) AS lv,
        any_value(cur) FILTER (WHERE l = 1) AS lc,
        any_value(cls) FILTER (WHERE l = 1) AS lcls,
        any_value(v)   FILTER (WHERE l = 0) AS pv,
        any_value(cur) FILTER (WHERE l = 0) AS pc,
        any_value(cls) FILTER (WHERE l = 0) AS pcls
    FROM lines
    GROUP BY id
)
SELECT
    CASE
        WHEN n - nl > 1    THEN 'duplicate_at_provider'
        WHEN nl > 1        THEN 'duplicate_in_ledger'
        WHEN n = nl        THEN 'missing_at_provider'
        WHEN nl = 0        THEN 'missing_in_ledger'
        WHEN pcls = 'pending' THEN 'pending'
        WHEN pc <> lc      THEN 'currency_mismatch'
        WHEN pcls <> lcls  THEN 'status_mismatch'
        WHEN lv <> pv      THEN 'amount_mismatch'
        ELSE 'matched'
    END AS category,
    coalesce(lc, pc) AS currency, count(*), sum(coalesce(lv, pv))::BIGINT
FROM per_id
GROUP BY ALL;
