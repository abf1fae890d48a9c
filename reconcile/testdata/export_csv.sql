-- One category's rows as a CSV export, from recon_sorted (rows_sorted.sql),
-- in Rows' order: byte for byte what writers.WriteCSV writes for the same
-- rows (the header, then one line per row, LF-terminated, encoding/csv
-- quoting; text neutralised and masked as writers.NeutraliseCSV does;
-- amounts exact in major units beside their currency). Each line is built
-- here and written as it is (QUOTE '': DuckDB adds nothing). Macros:
-- export_csv_macros.sql, mask_cards (sql/mask.sql). $first > $last: the header alone.
COPY (
    SELECT line FROM (
        SELECT -1::BIGINT AS k, 'category,merchant_transaction_id,ledger_amount,ledger_currency,ledger_status,provider_amount,provider_currency,provider_status,provider_id,reason,source_file,source_sheet,source_row,requested_date,provider_date,date_moved' AS line
        UNION ALL
        SELECT s.rowid,
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
            CASE WHEN s.requested_date <> s.provider_date THEN 'moved' ELSE '' END
        FROM recon_sorted AS s
        LEFT JOIN currencies AS lc ON lc.code = s.ledger_currency
        LEFT JOIN currencies AS pc ON pc.code = s.provider_currency
        LEFT JOIN loads AS ld ON ld.load_no = s.src_load
        WHERE s.rowid BETWEEN $first AND $last -- the category (rows_ranges.sql)
    )
    ORDER BY k
) TO $path (FORMAT csv, HEADER false, QUOTE '', ESCAPE '');
