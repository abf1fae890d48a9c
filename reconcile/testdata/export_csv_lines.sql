-- Every report row's CSV line, from recon_sorted (rows_sorted.sql), keyed
-- by its place in Rows' order (k, the rowid the categories' ranges count:
-- rows_ranges.sql): byte for byte what writers.WriteCSV writes for the row
-- (encoding/csv quoting; text neutralised and masked as
-- writers.NeutraliseCSV does; amounts exact in major units beside their
-- currency). export_csv.sql writes each category's lines from it. Macros:
-- export_csv_macros.sql, mask_cards (sql/mask.sql). One statement builds
-- the lines of every category: the macros inline into an expression DuckDB
-- takes ≈ 75 ms of CPU to plan, once here instead of once per category
-- file (11 files: ≈ 0.75 cpu-s an export, most of a small test's time).
CREATE OR REPLACE TEMP TABLE export_csv_lines AS
SELECT s.rowid AS k,
    pb_q(s.category) || ',' ||
    pb_q(pb_neut(s.merchant_transaction_id)) || ',' ||
    pb_q(CASE WHEN s.ledger_amount_minor IS NOT NULL THEN pb_amount(s.ledger_amount_minor, lc.exp) END) || ',' ||
    pb_q(CASE WHEN s.ledger_amount_minor IS NOT NULL THEN s.ledger_currency END) || ',' ||
    pb_q(pb_neut(mask_cards(s.ledger_status))) || ',' ||
    pb_q(CASE WHEN s.provider_amount_minor IS NOT NULL AND s.provider_currency IS NOT NULL THEN pb_amount(s.provider_amount_minor, pc.exp) END) || ',' ||
    pb_q(CASE WHEN s.provider_amount_minor IS NOT NULL AND s.provider_currency IS NOT NULL THEN s.provider_currency END) || ',' ||
    pb_q(pb_neut(mask_cards(s.provider_status))) || ',' ||
    pb_q(pb_neut(s.provider_id)) || ',' ||
    pb_q(pb_neut(mask_cards(s.reason))) || ',' ||
    pb_q(pb_neut(coalesce(s.source_file, ld.source_file))) || ',' ||
    pb_q(pb_neut(coalesce(s.source_sheet, ld.source_sheet))) || ',' ||
    CASE WHEN s.source_row > 0 THEN s.source_row::VARCHAR ELSE '' END || ',' ||
    coalesce(strftime(s.requested_date, '%Y-%m-%d'), '') || ',' ||
    coalesce(strftime(s.provider_date, '%Y-%m-%d'), '') || ',' ||
    CASE WHEN s.requested_date <> s.provider_date THEN 'moved' ELSE '' END AS line
FROM recon_sorted AS s
LEFT JOIN currencies AS lc ON lc.code = s.ledger_currency
LEFT JOIN currencies AS pc ON pc.code = s.provider_currency
LEFT JOIN loads AS ld ON ld.load_no = s.src_load;
