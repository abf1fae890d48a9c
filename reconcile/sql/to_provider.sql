-- Move the checked lines of results load /*n*/ (checked.sql) into provider
-- in one pass (see to_ledger.sql: a line with a problem fails the whole
-- INSERT).
INSERT INTO provider
SELECT
    CASE WHEN ok THEN seq END AS seq,
    id, amount_minor, currency, line_class,
    status_text AS status,
    provider_id,
    CASE WHEN regexp_matches(reason, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(reason) ELSE reason END, -- card numbers masked (mask.go)
    NULL, NULL, src_row, -- file and sheet: the loads row of the load
    NULL, NULL           -- no dates in a results file
FROM checked_/*n*/
WHERE NOT blank;
