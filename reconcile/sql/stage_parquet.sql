-- The rows to check, read straight from a Parquet file (no text copy of the
-- file is kept). The columns placeholder is replaced by every role, each the
-- file's column as a quoted identifier (double quotes doubled) cast to
-- VARCHAR, or NULL when the file lacks it, e.g.
--   CAST("Merchant Txn ID" AS VARCHAR) AS merchant_transaction_id, NULL::VARCHAR AS status, …
-- The path placeholder is the file path as a string literal (single quotes
-- doubled): a view cannot hold a bound parameter. A DECIMAL or integer amount
-- casts to its exact text; float columns are refused before this runs.
CREATE OR REPLACE VIEW stage_src AS
SELECT /*columns*/, (file_row_number + 1)::INTEGER AS src_row
FROM read_parquet(/*path*/, file_row_number = true);
