-- Run's single pass when the rows are wanted (Options.Rows): every line of
-- every file is read once (through its packed_<n> or checked_<n> view), the
-- two sides are joined on merchant_transaction_id as in summary.sql, and
-- each joined row is written, sorted, into recon_pass with the columns of a
-- report row that are not worked out from others; the view recon_sorted
-- (sql/rows_pass_view.sql) gives it the columns, types and order of the
-- table rows_sorted.sql writes, with three more (key, l_seq, p_seq) from
-- which Run sums the summary (rows_pass_summary.sql) and checks the pass.
-- No second read of the files, no insert into ledger/provider, no
-- categorising join (categorize.sql), no join of the ids with their lines
-- again (rows_sorted.sql).
--
-- Each load is read through packed_<n> (the fast road; a line off it or an
-- id to trim comes out as bad, category 2, and Run writes the table again
-- through checked_<n>, rowspass.go) or checked_<n>.
--
-- It serves the usual case only: every id with at most one line per side,
-- no line with a problem, no journal. Run checks that from the table (a
-- line joined twice makes its load's rows outnumber its lines; an unmatched
-- id with two lines on its side is two rows) and otherwise takes the exact
-- path, as after summary.sql; recon_sorted is then written again, a table.
--
-- The placeholders are replaced by Run with one SELECT per load (UNION ALL):
--   ledger side:   id, lpack, ledger_amount_minor, [ledger_status], l_seq
--   provider side: id, ppack, provider_amount_minor, [provider_status],
--                  [provider_id], [reason], p_seq
-- (statuses, provider_id and reason with card numbers masked, as
-- to_ledger.sql/to_provider.sql store them); a column in brackets only when
-- a file of that side has it: else it is NULL on every line, and the view
-- says so without the join, the sort and the table carrying it.
-- id and the packs as in summary.sql (NULL id: blank or a problem). A CSV
-- read by DuckDB is read through a view numbering its records in file order
-- (the row numbers the text copy's rowids give, insertLines): on two
-- threads the rowids of a copy of the file made just before (passCopy), on
-- one row_number() over the reader (windowView; rowspass.go).
--
-- key is summary.sql's per_line key, the one expression of recon_key.sql
-- (the category numbers 1-10 of summary_rows.sql, the currency numbers,
-- classes and sides; TestRowsPassSummary). The rows are sorted
-- by category — numbers 3-10 are in paybatch.Categories' order — then id
-- (unique within a category when the pass serves); blank lines (1) and
-- problems (2) are not report rows and go last, beyond every category's
-- range. A row is named by its provider line when it has one, else by its
-- ledger line: its load and its row (seq = load × 10^10 + row).
--
-- The table holds only what the view cannot work out: the category, the
-- currencies and their exponents come from key, the file's load and row
-- from the seqs, and the source and date columns are NULL on this path.
-- Writing those columns cost ≈ 0.3–0.5 cpu-s of the pass's ≈ 2 at 1M ids
-- per side, carrying them through the sort next to nothing
-- (BENCHMARKS.md #19, session 11).
CREATE OR REPLACE TABLE recon_pass AS
WITH ledger_lines AS (
    /*ledger*/
),
provider_lines AS (
    /*provider*/
),
d AS (
    SELECT l.id AS lid, p.id AS pid, l.* EXCLUDE (id), p.* EXCLUDE (id),
        (lpack & 2251799813685247) - 1125899906842624 AS lv,
        CASE WHEN (ppack >> 60) & 1 = 1
             THEN (ppack & 2251799813685247) - 1125899906842624 END AS pv,
        (lpack >> 51) & 511                           AS lc,
        (ppack >> 51) & 511                           AS pc,
        lpack >> 61                                   AS lcls,
        ppack >> 61                                   AS pcls
    FROM ledger_lines AS l
    FULL OUTER JOIN provider_lines AS p ON p.id = l.id
),
k AS (
    SELECT coalesce(lid, pid) AS id,
        -- the columns of a report row the loads gave (see above)
        * EXCLUDE (lid, pid, lpack, ppack, lv, pv, lc, pc, lcls, pcls),
        -- over packed_<n> a bad line stops the pass: /*bad*/ is an error()
        -- Run knows, and it writes the table again through checked_<n>
        -- without sorting or writing this one
        /*key*/ AS key
    FROM d
),
-- sorted with as few columns as the rows need (the sort moves every one);
-- what is computed from them comes after (the masked id here, the rest in
-- the view)
s AS (
    SELECT * FROM k
    ORDER BY CASE WHEN key & 15 <= 2 THEN 11 ELSE key & 15 END, id
)
SELECT
    -- the id as it leaves (rows, exports): card numbers masked (mask.go),
    -- sorted and matched on as written (rows_sorted.sql)
    mask_cards(id) AS merchant_transaction_id, * EXCLUDE (id)
FROM s;
