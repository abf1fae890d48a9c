-- The summary of rows_pass.sql's table: the rows of summary.sql's output
-- (category, ledger currency, provider currency, provider class, ids,
-- ledger_minor, provider_minor, l_rows, p_rows, noamount_minor,
-- ledger_done_minor), read by the same code in Run; the 'multi' and
-- 'lines' rows are Run's own checks of the table (runRowsPass).
WITH per_key AS (
    SELECT key, count(*) AS ids, sum(ledger_amount_minor) AS lsum, sum(provider_amount_minor) AS psum,
        key & 15 AS cat, (key >> 4) & 511 AS lc, (key >> 13) & 511 AS pc,
        (key >> 22) & 3 AS pcls, (key >> 24) & 3 AS lcls,
        (key >> 26) & 1 = 1 AS has_l, (key >> 27) & 1 = 1 AS has_p, (key >> 28) & 1 = 1 AS has_pv
    FROM recon_sorted
    GROUP BY key
)
SELECT
    ['blank', 'bad', 'rejected_before_send', 'missing_at_provider', 'missing_in_ledger', 'pending',
     'currency_mismatch', 'status_mismatch', 'amount_mismatch', 'matched'][cat] AS category,
    lc,
    nullif(pc, 0)                                              AS pc,
    CASE WHEN has_p THEN pcls END                              AS pcls,
    ids::BIGINT                                                AS ids,
    -- the sums stay HUGEINT (exact): Run refuses one beyond int64 (totals.go)
    lsum                                                       AS ledger_minor,
    psum                                                       AS provider_minor,
    CASE WHEN has_l THEN ids ELSE 0 END::BIGINT                AS l_rows,
    CASE WHEN has_p THEN ids ELSE 0 END::BIGINT                AS p_rows,
    CASE WHEN has_l AND has_p AND pcls = 1 AND lcls = 1 AND NOT has_pv THEN lsum END AS noamount_minor,
    CASE WHEN has_l AND lcls = 1 THEN lsum END                 AS ledger_done_minor
FROM per_key;
