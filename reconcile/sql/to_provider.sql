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
    CASE WHEN strlen(status_text) >= 13 AND regexp_matches(status_text, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(status_text) ELSE status_text END AS status,
    CASE WHEN strlen(provider_id) >= 13 AND regexp_matches(provider_id, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(provider_id) ELSE provider_id END AS provider_id,
    CASE WHEN regexp_matches(reason, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(reason) ELSE reason END,
    NULL, NULL, src_row, -- file and sheet: the loads row of the load
    NULL, NULL           -- no dates in a results file
FROM checked_/*n*/
WHERE NOT blank;
