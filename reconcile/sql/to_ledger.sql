-- Move the checked lines of ledger load /*n*/ (checked.sql) into the ledger
-- in one pass. A line with a problem gets a NULL seq, so the NOT NULL
-- constraint fails the whole INSERT (nothing is loaded) and the loader then
-- locates the problems with problems.sql. Blank lines are not data.
INSERT INTO ledger
SELECT
    CASE WHEN ok THEN seq END AS seq,
    id, amount_minor, currency,
    -- free text: card numbers masked (mask.go)
    CASE WHEN regexp_matches(type, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(type) ELSE type END,
    CASE WHEN regexp_matches(date, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(date) ELSE date END,
    line_class AS expected,
    CASE WHEN strlen(status_text) >= 13 AND regexp_matches(status_text, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(status_text) ELSE status_text END AS expected_status,
    NULL, NULL, src_row -- file and sheet: the loads row of the load
FROM checked_/*n*/
WHERE NOT blank;
