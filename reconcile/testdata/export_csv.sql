-- One category's rows as a CSV export, in Rows' order: the header, then the
-- category's lines (export_csv_lines.sql built them), LF-terminated and
-- written as they are (QUOTE '': DuckDB adds nothing). $first > $last: the
-- header alone.
COPY (
    SELECT line FROM (
        SELECT -1::BIGINT AS k, 'category,merchant_transaction_id,ledger_amount,ledger_currency,ledger_status,provider_amount,provider_currency,provider_status,provider_id,reason,source_file,source_sheet,source_row,requested_date,provider_date,date_moved' AS line
        UNION ALL
        SELECT k, line FROM export_csv_lines
        WHERE k BETWEEN $first AND $last -- the category (rows_ranges.sql)
    )
    ORDER BY k
) TO $path (FORMAT csv, HEADER false, QUOTE '', ESCAPE '');
