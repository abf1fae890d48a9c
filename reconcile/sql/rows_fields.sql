-- Rows $first to $last of recon_sorted, every column apart: what
-- rows_page.sql packs, read so only for a row whose text holds a NUL byte
-- (rows.go; and by the tests, as the reference of rows_page.sql).
--
-- (Before rows_page.sql packed the text, this was the page.) One page of
-- recon_sorted (rows_sorted.sql): rows $first to $last by place, rowid first. The rowid range is pushed into the table scan, so a page
-- reads its own row groups only. No ORDER BY and no join: a plain scan
-- keeps the table's order (preserve_insertion_order, on by default), which
-- Rows checks by the rowids, and Rows names a line loaded from a file from
-- its load (src_load) itself. The sort of each page and the join with
-- loads cost as much as the rest of the page.
SELECT rowid, category, merchant_transaction_id,
    ledger_amount_minor, ledger_currency, ledger_status,
    provider_amount_minor, provider_currency, provider_status, provider_id, reason,
    source_file, source_sheet, source_row,
    requested_date, provider_date, src_load
FROM recon_sorted
WHERE rowid BETWEEN $first AND $last;
