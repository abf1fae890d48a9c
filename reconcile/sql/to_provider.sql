-- Move the checked lines of results load /*n*/ (checked.sql) into provider
-- in one pass (see to_ledger.sql: a line with a problem fails the whole
-- INSERT).
INSERT INTO provider
SELECT
    CASE WHEN ok THEN seq END AS seq,
    id, amount_minor, currency, line_class,
    -- free text and the provider's id: card numbers masked (mask.go), so no
    -- table, report or export holds them (the id the lines are matched on,
    -- merchant_transaction_id, is masked where the rows leave: rows_sorted.sql)
    mask_cards(status_text) AS status,
    mask_cards(provider_id) AS provider_id,
    mask_cards(reason),
    NULL, NULL, src_row, -- file and sheet: the loads row of the load
    NULL, NULL           -- no dates in a results file
FROM checked_/*n*/
WHERE NOT blank;
