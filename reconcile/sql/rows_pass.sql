-- Run's single pass when the rows are wanted (Options.Rows): every line of
-- every file is read once (through its checked_<n> view), the two sides
-- are joined on merchant_transaction_id as in summary.sql, and each joined
-- row is written, sorted, with the columns a report row shows: recon_sorted,
-- the table rows_sorted.sql writes (same columns, types and order), with
-- three more (key, l_seq, p_seq) from which Run sums the summary
-- (rows_pass_summary.sql) and checks the pass. No second read of the
-- files, no insert into ledger/provider, no categorising join
-- (categorize.sql), no join of the ids with their lines again
-- (rows_sorted.sql).
--
-- Each load is read through packed_<n> (the fast road; a line off it or an
-- id to trim comes out as bad, category 2, and Run writes the table again
-- through checked_<n>, rowspass.go) or checked_<n>.
--
-- It serves the usual case only: every id with at most one line per side,
-- no line with a problem, no journal. Run checks that from the table (a
-- line joined twice makes its load's rows outnumber its lines; an unmatched
-- id with two lines on its side is two rows) and otherwise takes the exact
-- path, as after summary.sql; recon_sorted is then written again.
--
-- The placeholders are replaced by Run with one SELECT per load (UNION ALL):
--   ledger side:   id, lpack, l_amount, l_currency, l_status, l_seq
--   provider side: id, ppack, p_amount, p_currency, p_status, provider_id,
--                  reason, p_seq
-- (statuses, provider_id and reason with card numbers masked, as
-- to_ledger.sql/to_provider.sql store them)
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
-- ledger line: its load (src_load; rows_page.sql and the exports name the
-- file from loads) and its row (seq = load × 10^10 + row). $exps: each
-- currency number's exponent; $tols its tolerance in minor units.
CREATE OR REPLACE TABLE recon_sorted AS
WITH ledger_lines AS (
    /*ledger*/
),
provider_lines AS (
    /*provider*/
),
d AS (
    SELECT l.id AS lid, p.id AS pid, lpack, ppack,
        l_amount, l_currency, l_status, l_seq,
        p_amount, p_currency, p_status, provider_id, reason, p_seq,
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
        l_amount, l_currency, l_status, l_seq,
        p_amount, p_currency, p_status, provider_id, reason, p_seq,
        -- over packed_<n> a bad line stops the pass: /*bad*/ is an error()
        -- Run knows, and it writes the table again through checked_<n>
        -- without sorting or writing this one
        /*key*/ AS key
    FROM d
),
-- sorted with as few columns as the rows need (the sort moves every one);
-- what is computed from them comes after
s AS (
    SELECT * FROM k
    ORDER BY CASE WHEN key & 15 <= 2 THEN 11 ELSE key & 15 END, id
)
SELECT
    ['blank', 'bad', 'rejected_before_send', 'missing_at_provider', 'missing_in_ledger', 'pending',
     'currency_mismatch', 'status_mismatch', 'amount_mismatch', 'matched'][key & 15] AS category,
    -- the id as it leaves (rows, exports): card numbers masked (mask.go),
    -- sorted and matched on as written (rows_sorted.sql)
    mask_cards(id) AS merchant_transaction_id,
    l_amount AS ledger_amount_minor, l_currency AS ledger_currency, l_status AS ledger_status,
    p_amount AS provider_amount_minor, p_currency AS provider_currency, p_status AS provider_status,
    provider_id, reason,
    NULL::VARCHAR AS source_file, NULL::VARCHAR AS source_sheet,
    (coalesce(p_seq, l_seq) % 10000000000)::INTEGER AS source_row,
    NULL::DATE AS requested_date, NULL::DATE AS provider_date,
    coalesce(p_seq, l_seq) // 10000000000 AS src_load,
    CASE WHEN key & 67108864 <> 0 THEN list_extract($exps::INTEGER[], (key >> 4) & 511) END AS ledger_exp,
    CASE WHEN key & 134217728 <> 0 THEN list_extract($exps::INTEGER[], (key >> 13) & 511) END AS provider_exp,
    key, l_seq, p_seq
FROM s;
