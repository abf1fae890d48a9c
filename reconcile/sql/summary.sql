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
-- Each joined row is reduced to the bits its key depends on (raw), and its
-- two amounts (lv, pv); the rows are grouped by raw, and the key
-- (recon_key.sql) is computed once per group, not per row. Grouping 1M
-- rows by one BIGINT costs a fraction of grouping them by the category's
-- text and the currencies (BENCHMARKS.md); the key's CASE per joined row
-- cost ~0.05 cpu-s per 1M ids more than these bits (#19 session 10).
d AS (
    SELECT lid, pid, lpack, ppack,
        coalesce(lid, pid)                            AS id,
        (lpack & 2251799813685247) - 1125899906842624 AS lv,
        CASE WHEN (ppack >> 60) & 1 = 1
             THEN (ppack & 2251799813685247) - 1125899906842624 END AS pv
    FROM j
),
-- raw, from bit 0 up: 0-12 the ledger pack's top bits (lpack >> 51: class,
-- amount present, currency number), 4096 when the row has no ledger pack;
-- 13-25 the provider pack's likewise; 26 no ledger id; 27 no provider id;
-- 28 the amounts differ by more than the ledger currency's tolerance;
-- 29 the joined id is to trim (summarySQL's padded test). per_key unpacks
-- it into the columns recon_key.sql reads.
per_line AS (
    SELECT
        -- an id on one side only (a few per cent): grouped by itself below
        CASE WHEN lid IS NULL OR pid IS NULL THEN id END AS unmatched_id,
        lv, pv,
        coalesce(lpack >> 51, 4096) | (coalesce(ppack >> 51, 4096) << 13)
        | (CASE WHEN lid IS NULL THEN 67108864 ELSE 0 END)
        | (CASE WHEN pid IS NULL THEN 134217728 ELSE 0 END)
        | (CASE WHEN abs(lv - pv) > list_extract($tols::BIGINT[], (lpack >> 51) & 511) THEN 268435456 ELSE 0 END)
        | (CASE WHEN /*padded*/ THEN 536870912 ELSE 0 END) AS raw
    FROM d
),
-- matched rows fold into a few groups; each unmatched id keeps its own
per_group AS MATERIALIZED (
    SELECT raw, unmatched_id, count(*) AS ids, sum(lv) AS lsum, sum(pv) AS psum
    FROM per_line
    GROUP BY ALL
),
-- each group's joined row as recon_key.sql reads it: the ids only NULL or
-- not, the packs only their top bits, pv only NULL or not
per_key AS (
    SELECT /*key*/ AS key, sum(ids) AS ids, sum(lsum) AS lsum, sum(psum) AS psum
    FROM (
        SELECT ids, lsum, psum,
            CASE WHEN (raw >> 26) & 1 = 0 THEN '' END                  AS lid,
            CASE WHEN (raw >> 27) & 1 = 0 THEN '' END                  AS pid,
            CASE WHEN raw & 8191 <> 4096 THEN (raw & 8191) << 51 END   AS lpack,
            CASE WHEN (raw >> 13) & 8191 <> 4096 THEN ((raw >> 13) & 8191) << 51 END AS ppack,
            CASE WHEN raw & 8191 <> 4096 THEN raw & 511 END            AS lc,
            CASE WHEN (raw >> 13) & 8191 <> 4096 THEN (raw >> 13) & 511 END AS pc,
            CASE WHEN raw & 8191 <> 4096 THEN (raw >> 10) & 3 END      AS lcls,
            CASE WHEN (raw >> 13) & 8191 <> 4096 THEN (raw >> 23) & 3 END AS pcls,
            CASE WHEN (raw >> 13) & 8191 <> 4096 AND (raw >> 22) & 1 = 1 THEN 0 END AS pv,
            (raw >> 28) & 1 = 1                                        AS over,
            (raw >> 29) & 1 = 1                                        AS padded
        FROM per_group)
    GROUP BY key
)
/*summary_rows*/
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
