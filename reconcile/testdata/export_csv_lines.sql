-- Every report row's CSV line, from recon_sorted (rows_sorted.sql), keyed
-- by its place in Rows' order (k, the rowid the categories' ranges count:
-- rows_ranges.sql): byte for byte what writers.WriteCSV writes for the row
-- (encoding/csv quoting; text neutralised and masked as
-- writers.NeutraliseCSV does; amounts exact in major units beside their
-- currency). export_csv.sql writes each category's lines from it. Macros:
-- export_csv_macros.sql, mask_cards (sql/mask.sql). A macro is inlined
-- where it is called, each argument as often as the macro names it, so
-- pb_q(pb_neut(mask_cards(x))) written out is hundreds of nodes a column
-- that DuckDB took ≈ 75 ms of CPU to plan; the texts are neutralised and
-- masked in a materialized CTE first, pb_q applied to its columns, and one
-- statement builds the lines of every category (an export of a few rows:
-- ≈ 1.0 → 0.06 cpu-s, against the line expression written out per
-- category's COPY).
CREATE OR REPLACE TEMP TABLE export_csv_lines AS
WITH t AS MATERIALIZED (
    -- each text neutralised and masked first: pb_q over these columns
    -- inlines into a small expression, not pb_q ∘ pb_neut ∘ mask_cards
    SELECT s.rowid AS k, s.category,
        pb_neut(s.merchant_transaction_id) AS id,
        CASE WHEN s.ledger_amount_minor IS NOT NULL THEN pb_amount(s.ledger_amount_minor, lc.exp) END AS l_amount,
        CASE WHEN s.ledger_amount_minor IS NOT NULL THEN s.ledger_currency END AS l_cur,
        pb_neut(mask_cards(s.ledger_status)) AS l_status,
        CASE WHEN s.provider_amount_minor IS NOT NULL AND s.provider_currency IS NOT NULL THEN pb_amount(s.provider_amount_minor, pc.exp) END AS p_amount,
        CASE WHEN s.provider_amount_minor IS NOT NULL AND s.provider_currency IS NOT NULL THEN s.provider_currency END AS p_cur,
        pb_neut(mask_cards(s.provider_status)) AS p_status,
        pb_neut(s.provider_id) AS p_id,
        pb_neut(mask_cards(s.reason)) AS reason,
        pb_neut(coalesce(s.source_file, ld.source_file)) AS file,
        pb_neut(coalesce(s.source_sheet, ld.source_sheet)) AS sheet,
        CASE WHEN s.source_row > 0 THEN s.source_row::VARCHAR ELSE '' END AS row,
        coalesce(strftime(s.requested_date, '%Y-%m-%d'), '') AS requested,
        coalesce(strftime(s.provider_date, '%Y-%m-%d'), '') AS provided,
        CASE WHEN s.requested_date <> s.provider_date THEN 'moved' ELSE '' END AS moved
    FROM recon_sorted AS s
    LEFT JOIN currencies AS lc ON lc.code = s.ledger_currency
    LEFT JOIN currencies AS pc ON pc.code = s.provider_currency
    LEFT JOIN loads AS ld ON ld.load_no = s.src_load
)
SELECT k,
    pb_q(category) || ',' || pb_q(id) || ',' || pb_q(l_amount) || ',' || pb_q(l_cur) || ',' ||
    pb_q(l_status) || ',' || pb_q(p_amount) || ',' || pb_q(p_cur) || ',' || pb_q(p_status) || ',' ||
    pb_q(p_id) || ',' || pb_q(reason) || ',' || pb_q(file) || ',' || pb_q(sheet) || ',' ||
    row || ',' || requested || ',' || provided || ',' || moved AS line
FROM t;
