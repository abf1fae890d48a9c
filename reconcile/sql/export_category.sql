-- One category's rows for a Parquet export, from recon_sorted
-- (rows_sorted.sql), in Rows' order. Amounts are BIGINT minor units
-- beside their currency and its exponent (a column cannot carry a different
-- DECIMAL scale per row); amount = amount_minor / 10^exponent. Statuses
-- are masked here (paybatch_mask, mask.go) as the reason is in
-- rows_sorted.sql: card numbers never leave in any column of free text.
--
-- The table alone is read, with no join and no ORDER BY: a plain scan keeps
-- the table's order (preserve_insertion_order, on by default), which is
-- Rows' order; the sort of the rows by rowid took half the export's time.
-- A line loaded from a file is named by its load (src_load; its own
-- source_file and source_sheet are NULL): ExportParquet puts in place of
-- the two NULLs marked load_file and load_sheet a CASE over the loads, one WHEN
-- per file load (`paybatch reconcile` has at most two), whose THENs are
-- parameters ($load_file_<i>, $load_sheet_<i>). The maps of load_no →
-- file, sheet this replaced (map_extract_value per row) copied each row's
-- file name into the result and took ≈ 0.08 of the 1M export's ≈ 0.6 cpu-s
-- (#19, BENCHMARKS.md session 11); a CASE's THEN hands the constant on.
--
-- DICTIONARY_SIZE_LIMIT 1000: a column of more distinct values in a row
-- group is written without a dictionary (the ids, provider ids, amounts and
-- row numbers: unique or nearly), one of fewer with it (currencies,
-- statuses, reasons, files, dates). With DuckDB's default limit the 1M
-- report's export took 0.64 cpu-s, most of it hashing the unique columns
-- for a dictionary (perf); with 1000, 0.54 (#19, BENCHMARKS.md). Only
-- encodings change, never a value (TestExportParquetInRowsOrder).
COPY (
    SELECT merchant_transaction_id,
        ledger_amount_minor, ledger_currency, ledger_exp AS ledger_currency_exponent,
        mask_cards(ledger_status) AS ledger_status,
        provider_amount_minor, provider_currency, provider_exp AS provider_currency_exponent,
        mask_cards(provider_status) AS provider_status,
        provider_id, reason,
        coalesce(source_file, /*load_file*/NULL) AS source_file,
        coalesce(source_sheet, /*load_sheet*/NULL) AS source_sheet, source_row,
        requested_date, provider_date,
        requested_date IS NOT NULL AND provider_date IS NOT NULL AND provider_date <> requested_date AS date_moved
    FROM recon_sorted
    WHERE rowid BETWEEN $first AND $last -- the category (rows_ranges.sql)
) TO $path (FORMAT parquet, DICTIONARY_SIZE_LIMIT 1000);
