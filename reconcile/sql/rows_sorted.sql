-- Every reconciled row, once, in the order Rows gives them: category
-- precedence, then id, then line order. The table is written in that order,
-- so a row's rowid is its place: a category is one contiguous rowid range,
-- and Rows reads it in pages (rows_page.sql).
--
-- Why a table: DuckDB's Go driver materialises a query's whole result before
-- the first row reaches Go, so a single ORDER BY query over every row held
-- all of them at once (1M ids ran out of a 550MB DuckDB limit). Writing the
-- table sorts once, spilling as it needs to; the table itself can leave
-- memory; and a page of rows is all a query ever returns. The reports that
-- read several categories (workbook sheets, CSV and Parquet exports) share
-- this one sort instead of joining and sorting again each time.
SET VARIABLE category_order = (SELECT list(category ORDER BY ord) FROM category_order);
CREATE OR REPLACE TEMP TABLE recon_sorted AS
SELECT category, merchant_transaction_id,
    ledger_amount_minor, ledger_currency, ledger_status,
    provider_amount_minor, provider_currency, provider_status, provider_id, reason,
    source_file, source_sheet, source_row, src_load
FROM recon_rows
ORDER BY list_position(getvariable('category_order'), category), merchant_transaction_id, ledger_seq NULLS FIRST, provider_seq NULLS FIRST;
