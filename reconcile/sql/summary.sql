-- Run's single pass: every line of every loaded file is read once (through
-- its checked_<n> view), the two sides are joined on merchant_transaction_id,
-- and the ids are categorised and counted per category and currency without
-- writing a row anywhere.
--
-- The placeholders are replaced by Run with one SELECT per load (UNION ALL),
-- the CSVs DuckDB reads in ledger_csv/provider_csv, every other load in
-- ledger/provider:
--   ledger side:   id, lpack  for every ledger line
--   provider side: id, ppack  for every results line and journal line
-- where id is the merchant_transaction_id, NULL when the line is blank or has
-- a problem, and the pack is the line in one BIGINT (checked.sql): class
-- number in bits 61-62 (0 rejected, 1 done, 2 not_done, 3 pending), amount
-- present in bit 60, currency number in bits 51-59 and amount_minor + 2^50
-- in bits 0-50. A blank line (no id, amount, currency or status) has the pack
-- 2^50 (nothing present, amount 0) and a line with a problem no pack.
--
-- Why a join and not a GROUP BY of every line by id: at 1M and 10M ids per
-- side DuckDB's hash aggregate over both sides costs about half as much
-- again as the full outer join of the same lines (BENCHMARKS.md). The join
-- needs no aggregate per id, yet no duplicate can hide in it:
--   * an id with one line on a side and k > 1 on the other gives k joined
--     rows, so the side with one line appears k times: the number of joined
--     rows holding a ledger line (l_rows, blank lines included) exceeds the
--     number of ledger lines, or p_rows exceeds the number of provider
--     lines. The last output row ('lines') holds the number of lines of each
--     side (see Counting below). Run compares.
--   * an id with several lines on one side and none on the other stays
--     unmatched: unmatched rows (a few per cent) are grouped by id alone
--     below, and an id seen twice there is 'multi'.
-- Any duplicate (and a journal id both rejected and executed, which is two
-- provider lines) hands the reconcile to the exact path, categorize.sql.
--
-- Counting: a CSV read by DuckDB is counted where it is joined (ledger_csv,
-- provider_csv, which DuckDB then materialises: the file is parsed once);
-- any other file by its reader's own count of records (a Parquet file's row
-- count is in its metadata; an XLSX sheet or a CSV read in Go is a table),
-- which needs no line checked. Blank lines are joined too, as 'blank', so
-- that every record is one line either way. Counting a CSV's records with
-- its own count(*) instead parsed the file twice: 1M lines, Run 1.0-1.2 s
-- became 1.4 s (BENCHMARKS.md).
--
-- Output: one row per (category, ledger currency, provider currency,
-- provider class) with the count of ids, the sums of their ledger and
-- provider amounts, and l_rows/p_rows, and the ledger amount of ids done
-- without a provider amount (voids, noamount_minor); then the row 'lines' with the number
-- of lines of each side in l_rows/p_rows. $tols is the --tolerance in minor
-- units per currency number. Three pseudo-categories are not categories:
--   'blank'  blank lines, counted in l_rows/p_rows and otherwise ignored
--   'bad'    some line has a problem (the loader then names each one)
--   'multi'  an unmatched id has more than one line
-- 'bad' and 'multi' send Run to the exact path. Otherwise the categories are
-- those of categorize.sql, in its precedence; with one line per side, a
-- provider line of class 0 is a rejected one and any other class an
-- executed one.
WITH ledger_csv AS (
    /*ledger_csv*/
),
provider_csv AS (
    /*provider_csv*/
),
ledger_lines AS NOT MATERIALIZED (
    FROM ledger_csv
    UNION ALL
    /*ledger*/
),
provider_lines AS NOT MATERIALIZED (
    FROM provider_csv
    UNION ALL
    /*provider*/
),
j AS (
    SELECT l.id AS lid, p.id AS pid, l.lpack, p.ppack
    FROM ledger_lines AS l
    FULL OUTER JOIN provider_lines AS p ON p.id = l.id
),
d AS (
    SELECT lid, pid, lpack, ppack,
        -- a blank line or one with a problem has no id, so it never joins:
        -- both ids NULL, and a pack only if blank
        lid IS NULL AND pid IS NULL                   AS unjoined,
        coalesce(lpack, ppack) IS NOT NULL            AS packed,
        CASE WHEN lid IS NULL OR pid IS NULL THEN coalesce(lid, pid) END AS unmatched_id,
        (lpack & 2251799813685247) - 1125899906842624 AS lv,
        (lpack >> 51) & 511                           AS lc,
        lpack >> 61                                   AS lcls,
        CASE WHEN (ppack >> 60) & 1 = 1
             THEN (ppack & 2251799813685247) - 1125899906842624 END AS pv,
        nullif((ppack >> 51) & 511, 0)                AS pc,
        ppack >> 61                                   AS pcls
    FROM j
),
per_line AS (
    SELECT unmatched_id, lid, pid, lpack, ppack, lv, lc, pc, pcls, pv,
        -- done without an amount (a void): its ledger amount is not compared
        CASE WHEN lid IS NOT NULL AND pid IS NOT NULL AND pcls = 1 AND lcls = 1 AND pv IS NULL THEN lv END AS nv,
        -- a ledger line expecting cancelled/declined/failed expects no money
        -- to move: it is not in the ledger's totals
        CASE WHEN lcls = 1 THEN lv END AS ldv,
        CASE
            WHEN unjoined AND packed                           THEN 'blank'
            WHEN unjoined                                      THEN 'bad'
            WHEN pid IS NOT NULL AND pcls = 0                  THEN 'rejected_before_send'
            WHEN pid IS NULL                                   THEN 'missing_at_provider'
            WHEN lid IS NULL                                   THEN 'missing_in_ledger'
            WHEN pcls = 3                                      THEN 'pending'
            WHEN pc IS NOT NULL AND pc <> lc                   THEN 'currency_mismatch'
            WHEN pcls <> lcls                                  THEN 'status_mismatch'
            WHEN pcls = 1 AND pv IS NOT NULL
                 AND abs(lv - pv) > list_extract($tols::BIGINT[], lc) THEN 'amount_mismatch'
            ELSE 'matched'
        END AS category
    FROM d
),
-- matched rows fold into a few groups; each unmatched id keeps its own
per_group AS (
    SELECT unmatched_id, category, lc, pc, pcls,
        count(*)        AS ids,
        sum(lv)         AS ledger_minor,
        sum(pv)         AS provider_minor,
        sum(nv)         AS noamount_minor,
        sum(ldv)        AS ledger_done_minor,
        count(lpack)    AS l_rows,
        count(ppack)    AS p_rows
    FROM per_line
    GROUP BY ALL
),
-- an unmatched id is grouped by itself alone (its lines may differ in
-- category or currency): more than one line is a one-sided duplicate
per_unmatched AS (
    SELECT
        CASE WHEN unmatched_id IS NOT NULL AND sum(ids) > 1 THEN 'multi'
             ELSE any_value(category) END AS category,
        any_value(lc) AS lc, any_value(pc) AS pc, any_value(pcls) AS pcls,
        sum(ids) AS ids, sum(ledger_minor) AS ledger_minor, sum(provider_minor) AS provider_minor,
        sum(noamount_minor) AS noamount_minor, sum(ledger_done_minor) AS ledger_done_minor,
        sum(l_rows) AS l_rows, sum(p_rows) AS p_rows
    FROM per_group
    GROUP BY unmatched_id,
        CASE WHEN unmatched_id IS NULL THEN category END,
        CASE WHEN unmatched_id IS NULL THEN lc END,
        CASE WHEN unmatched_id IS NULL THEN pc END,
        CASE WHEN unmatched_id IS NULL THEN pcls END
)
SELECT category, lc, pc, pcls,
    sum(ids)::BIGINT            AS ids,
    sum(ledger_minor)::BIGINT   AS ledger_minor,
    sum(provider_minor)::BIGINT AS provider_minor,
    sum(l_rows)::BIGINT         AS l_rows,
    sum(p_rows)::BIGINT         AS p_rows,
    sum(noamount_minor)::BIGINT AS noamount_minor,
    sum(ledger_done_minor)::BIGINT AS ledger_done_minor
FROM per_unmatched
GROUP BY ALL
UNION ALL
SELECT 'lines', NULL, NULL, NULL, 0, NULL, NULL,
    (SELECT count(*) FROM ledger_csv) + /*ledger_count*/,
    (SELECT count(*) FROM provider_csv) + /*provider_count*/,
    NULL, NULL;
