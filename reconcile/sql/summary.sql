-- Run's single pass: every line of every loaded file is read (through its
-- checked_<n> view) and grouped by merchant_transaction_id once, and the ids
-- are categorised and counted per category and currency without writing a
-- row anywhere. Nothing is materialised, which is what makes a reconcile of
-- clean files cost about one hash aggregation of both sides.
--
-- The lines placeholder (in the first CTE) is replaced by Run with one SELECT per
-- load (UNION ALL), each giving per line:
--   id    the merchant_transaction_id, or NULL when the line has a problem
--   l     1 for a ledger line, else 0
--   r     1 for a rejected provider line (journal), else 0
--   pack  the line in one BIGINT (checked.sql): class number in bits 61-62
--         (0 rejected, 1 done, 2 not_done, 3 pending), amount present in
--         bit 60, currency number in bits 51-59, amount_minor + 2^50 in 0-50.
-- The largest pack of a side is its line when the side has one line; on the
-- provider side an executed line (class >= 1) outranks rejected ones.
--
-- Output: one row per (category, ledger currency, provider currency,
-- provider class) with the count of ids and the sums of their ledger and
-- provider amounts; $tols is the --tolerance in minor units per currency
-- number. Two pseudo-categories hand the reconcile to the exact path in Go:
--   'bad'    some line has a problem (the loader then names each one)
--   'multi'  some id has more than one ledger line, more than one executed
--            line, or only several rejected lines (duplicates, whose rows and
--            totals need every line: categorize.sql)
-- Otherwise the categories are those of categorize.sql, in its precedence.
WITH lines AS (
    /*lines*/
),
per_id AS (
    SELECT id,
        count(*) AS n, sum(l) AS nl, sum(r) AS nr,
        max(CASE WHEN l = 1 THEN pack END) AS lpack,
        max(CASE WHEN l = 0 THEN pack END) AS ppack
    FROM lines
    GROUP BY id
),
d AS (
    SELECT id, nl, n - nl - nr AS ne, nr,
        (lpack & 2251799813685247) - 1125899906842624 AS lv,
        (lpack >> 51) & 511                           AS lc,
        lpack >> 61                                   AS lcls,
        CASE WHEN (ppack >> 60) & 1 = 1
             THEN (ppack & 2251799813685247) - 1125899906842624 END AS pv,
        nullif((ppack >> 51) & 511, 0)                AS pc,
        ppack >> 61                                   AS pcls
    FROM per_id
)
SELECT
    CASE
        WHEN id IS NULL                                        THEN 'bad'
        WHEN nl > 1 OR ne > 1 OR (nl = 0 AND ne = 0 AND nr > 1) THEN 'multi'
        WHEN ne = 0 AND nr > 0                                 THEN 'rejected_before_send'
        WHEN ne = 0                                            THEN 'missing_at_provider'
        WHEN nl = 0                                            THEN 'missing_in_ledger'
        WHEN pcls = 3                                          THEN 'pending'
        WHEN pc IS NOT NULL AND pc <> lc                       THEN 'currency_mismatch'
        WHEN pcls <> lcls                                      THEN 'status_mismatch'
        WHEN pcls = 1 AND pv IS NOT NULL
             AND abs(lv - pv) > list_extract($tols::BIGINT[], lc) THEN 'amount_mismatch'
        ELSE 'matched'
    END AS category,
    lc, pc, pcls,
    count(*)          AS ids,
    sum(lv)::BIGINT   AS ledger_minor,
    sum(pv)::BIGINT   AS provider_minor
FROM d
GROUP BY ALL;
