-- Load a CSV as text. $names gives each column its role (or a name starting
-- with "_" for columns reconciliation does not use; those are not kept).
-- all_varchar: DuckDB must never guess a type (it would read amounts as DOUBLE).
CREATE OR REPLACE TABLE stage AS
SELECT COLUMNS('^[a-z]')
FROM read_csv($path,
    header = false, skip = 1, all_varchar = true,
    delim = $delim, quote = '"', escape = '"',
    names = $names, null_padding = true);
