-- One page of recon_sorted (rows_sorted.sql): rows $first to $last by place,
-- rowid first. The rowid range is pushed into the table scan, so a page
-- reads its own row groups only. No ORDER BY and no join: a plain scan
-- keeps the table's order (preserve_insertion_order, on by default), which
-- Rows checks by the rowids, and Rows names a line loaded from a file from
-- its load (src_load) itself. The sort of each page and the join with
-- loads cost as much as the rest of the page.
--
-- The ten text columns come as one value, joined by NUL bytes (concat
-- reads a NULL as ''), and which of the three whose NULL Rows tells from ''
-- are NULL as the bits of a small number: the Go driver makes a new string
-- and boxes it for every text value it hands over, which was most of the
-- drain's cost in Go (pageRow cuts the fields out of the one string without
-- copying them: 1M ids, Rows alone 0.89-0.94 -> 0.73-0.77 cpu-s). A field
-- holding a NUL byte itself gives a value of more than nine; Rows then
-- reads that row's columns apart (rows_fields.sql).
SELECT rowid,
    concat(category, chr(0), merchant_transaction_id, chr(0),
        ledger_currency, chr(0), ledger_status, chr(0),
        provider_currency, chr(0), provider_status, chr(0), provider_id, chr(0), reason, chr(0),
        source_file, chr(0), source_sheet) AS text,
    ((provider_currency IS NULL)::INTEGER
        + 2 * (source_file IS NULL)::INTEGER
        + 4 * (source_sheet IS NULL)::INTEGER)::UTINYINT AS nulls,
    ledger_amount_minor, provider_amount_minor, source_row,
    requested_date, provider_date, src_load
FROM recon_sorted
WHERE rowid BETWEEN $first AND $last;
