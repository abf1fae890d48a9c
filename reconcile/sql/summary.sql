-- Run's single pass: every line of every loaded file is read once (through
-- packed.sql's query, written in for each file, or its checked_<n> view,
-- checked.sql), the two sides are joined on
-- merchant_transaction_id, and the ids are categorised and counted per
-- category and currency without writing a row anywhere. When a line is off
-- packed_<n>'s fast road (it comes out as 'bad'), Run runs the pass again
-- through checked_<n>, which converts every line, and decides there.
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
-- Ids: packed_<n> gives each line's id as written, and a joined id that
-- starts or ends with a space (padded_id, schema.sql) is 'bad' below:
-- testing each joined id once costs half of testing every line of both
-- sides (BENCHMARKS.md, #19 session 8). checked_<n> gives them trimmed.
--
-- Output: rows of (category, ledger currency, provider currency,
-- provider class) — several may share these, Run adds them up — with the count of ids, the sums of their ledger and
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
-- Each joined row is reduced to a small integer key that says everything the
-- sums depend on, and its two amounts (lv, pv). Grouping 1M rows by one
-- BIGINT costs a fraction of grouping them by the category's text and the
-- currencies (BENCHMARKS.md). The key, from bit 0 up:
--   0-3   category number, 1-based in the list of the final SELECT
--   4-12  ledger currency number (0: none)    13-21 provider currency number
--   22-23 provider class   24-25 ledger class
--   26    a ledger line    27 a provider line  28 the provider line has an amount
d AS (
    SELECT lid, pid, lpack, ppack,
        coalesce(lid, pid)                            AS id,
        (lpack & 2251799813685247) - 1125899906842624 AS lv,
        CASE WHEN (ppack >> 60) & 1 = 1
             THEN (ppack & 2251799813685247) - 1125899906842624 END AS pv,
        (lpack >> 51) & 511                           AS lc,
        (ppack >> 51) & 511                           AS pc,
        lpack >> 61                                   AS lcls,
        ppack >> 61                                   AS pcls
    FROM j
),
per_line AS (
    SELECT
        -- an id on one side only (a few per cent): grouped by itself below
        CASE WHEN lid IS NULL OR pid IS NULL THEN id END AS unmatched_id,
        lv, pv,
        CASE
            -- a blank line or one with a problem has no id, so it never
            -- joins: both ids NULL, and a pack only if blank
            WHEN lid IS NULL AND pid IS NULL AND coalesce(lpack, ppack) IS NOT NULL THEN 1 -- blank
            WHEN lid IS NULL AND pid IS NULL                   THEN 2  -- bad
            -- packed_<n> joins the ids as written: an id to trim is 'bad'
            -- here, and checked_<n> trims it (false over checked_<n>)
            WHEN /*padded*/                                    THEN 2  -- bad
            WHEN pid IS NOT NULL AND pcls = 0                  THEN 3  -- rejected_before_send
            WHEN pid IS NULL                                   THEN 4  -- missing_at_provider
            WHEN lid IS NULL                                   THEN 5  -- missing_in_ledger
            WHEN pcls = 3                                      THEN 6  -- pending
            WHEN pc <> 0 AND pc <> lc                          THEN 7  -- currency_mismatch
            WHEN pcls <> lcls                                  THEN 8  -- status_mismatch
            WHEN pcls = 1 AND pv IS NOT NULL
                 AND abs(lv - pv) > list_extract($tols::BIGINT[], lc) THEN 9 -- amount_mismatch
            ELSE 10                                                -- matched
        END
        | (coalesce(lc, 0) << 4) | (coalesce(pc, 0) << 13)
        | (coalesce(pcls, 0) << 22) | (coalesce(lcls, 0) << 24)
        | (CASE WHEN lpack IS NOT NULL THEN 67108864 ELSE 0 END)
        | (CASE WHEN ppack IS NOT NULL THEN 134217728 ELSE 0 END)
        | (CASE WHEN pv IS NOT NULL THEN 268435456 ELSE 0 END) AS key
    FROM d
),
-- matched rows fold into a few groups; each unmatched id keeps its own
per_group AS MATERIALIZED (
    SELECT key, unmatched_id, count(*) AS ids, sum(lv) AS lsum, sum(pv) AS psum
    FROM per_line
    GROUP BY ALL
),
per_key AS (
    SELECT key, sum(ids) AS ids, sum(lsum) AS lsum, sum(psum) AS psum,
        key & 15 AS cat, (key >> 4) & 511 AS lc, (key >> 13) & 511 AS pc,
        (key >> 22) & 3 AS pcls, (key >> 24) & 3 AS lcls,
        (key >> 26) & 1 = 1 AS has_l, (key >> 27) & 1 = 1 AS has_p, (key >> 28) & 1 = 1 AS has_pv
    FROM per_group
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
    -- done without an amount (a void): its ledger amount is not compared
    CASE WHEN has_l AND has_p AND pcls = 1 AND lcls = 1 AND NOT has_pv THEN lsum END AS noamount_minor,
    -- a ledger line expecting cancelled/declined/failed expects no money
    -- to move: it is not in the ledger's totals
    CASE WHEN has_l AND lcls = 1 THEN lsum END                 AS ledger_done_minor
FROM per_key
UNION ALL
-- an unmatched id is grouped by itself alone (its lines may differ in
-- category or currency): more than one line is a one-sided duplicate
SELECT 'multi', NULL, NULL, NULL, 0, NULL, NULL, 0, 0, NULL, NULL
FROM (SELECT unmatched_id FROM per_group WHERE unmatched_id IS NOT NULL
      GROUP BY unmatched_id HAVING sum(ids) > 1 LIMIT 1)
UNION ALL
SELECT 'lines', NULL, NULL, NULL, 0, NULL, NULL,
    (SELECT count(*) FROM ledger_csv) + /*ledger_count*/,
    (SELECT count(*) FROM provider_csv) + /*provider_count*/,
    NULL, NULL;
