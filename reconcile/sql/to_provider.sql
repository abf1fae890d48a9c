-- Move the checked lines of results load /*n*/ (checked.sql) into provider
-- in one pass (see to_ledger.sql: a line with a problem fails the whole
-- INSERT).
INSERT INTO provider
SELECT
    CASE WHEN ok THEN seq END AS seq,
    id, amount_minor, currency, line_class,
    status_text AS status,
    provider_id, reason,
    NULL, NULL, src_row -- file and sheet: the loads row of the load
FROM checked_/*n*/
WHERE NOT blank;
