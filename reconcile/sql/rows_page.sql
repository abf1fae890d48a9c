-- One page of recon_sorted (rows_sorted.sql): rows $first to $last by place.
-- The rowid range is pushed into the table scan, so a page reads its own
-- row groups only. A line loaded from a file is named by its load.
SELECT s.category, s.merchant_transaction_id,
    s.ledger_amount_minor, s.ledger_currency, s.ledger_status,
    s.provider_amount_minor, s.provider_currency, s.provider_status, s.provider_id, s.reason,
    coalesce(s.source_file, ld.source_file), coalesce(s.source_sheet, ld.source_sheet), s.source_row,
    s.requested_date, s.provider_date
FROM recon_sorted AS s
LEFT JOIN loads AS ld ON ld.load_no = s.src_load
WHERE s.rowid BETWEEN $first AND $last
ORDER BY s.rowid;
