-- The summary's rows, one per key of per_key (key, ids: the ids of the
-- key, lsum, psum: the sums of their ledger and provider amounts), as Run
-- reads them (summaryRows): summary.sql's (its per_key sums per_group)
-- and rows_pass_summary.sql's (its per_key sums recon_sorted). Run inserts
-- this for /*summary_rows*/. The key's bits: recon_key.sql.
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
    -- done without an amount (a void): its ledger amount is not compared
    CASE WHEN has_l AND has_p AND pcls = 1 AND lcls = 1 AND NOT has_pv THEN lsum END AS noamount_minor,
    -- a ledger line expecting cancelled/declined/failed expects no money
    -- to move: it is not in the ledger's totals
    CASE WHEN has_l AND lcls = 1 THEN lsum END                 AS ledger_done_minor
FROM (
    SELECT ids, lsum, psum,
        key & 15 AS cat, (key >> 4) & 511 AS lc, (key >> 13) & 511 AS pc,
        (key >> 22) & 3 AS pcls, (key >> 24) & 3 AS lcls,
        (key >> 26) & 1 = 1 AS has_l, (key >> 27) & 1 = 1 AS has_p, (key >> 28) & 1 = 1 AS has_pv
    FROM per_key
)
