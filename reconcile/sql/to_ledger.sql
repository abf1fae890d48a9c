-- Move the checked lines of ledger load /*n*/ (checked.sql) into the ledger
-- in one pass. A line with a problem gets a NULL seq, so the NOT NULL
-- constraint fails the whole INSERT (nothing is loaded) and the loader then
-- locates the problems with problems.sql. Blank lines are not data.
INSERT INTO ledger
SELECT
    CASE WHEN ok THEN seq END AS seq,
    id, amount_minor, currency,
    -- free text: card numbers masked (mask.go)
    mask_cards(type),
    mask_cards(date),
    line_class AS expected,
    mask_cards(status_text) AS expected_status,
    NULL, NULL, src_row -- file and sheet: the loads row of the load
FROM checked_/*n*/
WHERE NOT blank;
