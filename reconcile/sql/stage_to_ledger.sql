-- Move the rows of a checked stage into the ledger in one pass. A row with a
-- problem gets a NULL seq, so the NOT NULL constraint fails the whole INSERT
-- (nothing is loaded) and the loader then locates the problems with
-- stage_problems.sql; a good file is read once. Blank rows are not data.
-- An empty expected_status means the ledger expects the operation done.
INSERT INTO ledger
SELECT
    CASE WHEN ok THEN load_no::BIGINT * 10000000000 + src_row END AS seq,
    id, amount_minor, currency, type, date,
    coalesce(class, 'done') AS expected,
    nullif(trim(status_text), '') AS expected_status,
    NULL, NULL, src_row -- file and sheet: the loads row of load_no
FROM stage_checked
WHERE NOT blank;
