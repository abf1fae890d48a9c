-- Load a Parquet file as text. The columns placeholder is replaced by the file's columns
-- as quoted identifiers (double quotes doubled), each cast to VARCHAR and
-- renamed to its role, e.g.  CAST("Merchant Txn ID" AS VARCHAR) AS merchant_transaction_id.
-- A DECIMAL or integer amount casts to its exact text; float columns are
-- refused before this runs.
CREATE OR REPLACE TABLE stage AS
SELECT /*columns*/
FROM read_parquet($path);
