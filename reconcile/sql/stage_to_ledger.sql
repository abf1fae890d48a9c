-- Move the good rows of a checked stage into the ledger (the caller then
-- compares the count with the non-blank rows and undoes the load if any row
-- had a problem). An empty expected_status means the
-- ledger expects the operation done.
INSERT INTO ledger
SELECT
    load_no::BIGINT * 10000000000 + src_row AS seq,
    id, amount_minor, currency, type, date,
    coalesce(class, 'done') AS expected,
    nullif(trim(status_text), '') AS expected_status,
    source_file, source_sheet, src_row
FROM stage_checked
WHERE ok;
