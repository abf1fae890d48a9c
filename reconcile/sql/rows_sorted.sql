-- Every reconciled row, once, in the order Rows gives them: category
-- precedence, then id, then line order. One row per id, except:
--   duplicate_in_ledger   one row per ledger line (with the id's provider line)
--   duplicate_at_provider one row per executed provider line (with the first ledger line)
--   rejected_before_send, rejected_by_provider
--                         one row per rejected or refused line (with the first ledger line)
-- and one per id-less reader reject. The table is written in that order, so
-- a row's rowid is its place: a category is one contiguous rowid range, and
-- Rows reads it in pages (rows_page.sql).
--
-- Why a table: DuckDB's Go driver materialises a query's whole result before
-- the first row reaches Go, so a single ORDER BY query over every row held
-- all of them at once (1M ids ran out of a 550MB DuckDB limit). Writing the
-- table sorts once, spilling as it needs to; the table itself can leave
-- memory; and a page of rows is all a query ever returns. The reports that
-- read several categories (workbook sheets, CSV and Parquet exports) share
-- this one sort instead of joining and sorting again each time.
--
-- Why three steps: with both joins (ledger lines, then provider lines) and
-- the sort in one query DuckDB held both hash tables and the sort at once:
-- 300k ids ran out of a 320 MB limit, 1M ids out of 512 MB. One join per
-- step, each written to a table that can leave memory, then the sort alone:
-- 300k ids fit 256 MB, 1M ids 256 MB, 10M ids 1 GB (two steps, the sort
-- beside the second join, ran out at 10M under 1 GB). Likewise the
-- precedence comes from a list, not a join with category_order, on which
-- DuckDB built a hash table of every row.
--
-- Joined on the id alone (hash joins), then filtered: a condition inside the
-- ON clause made DuckDB fall back to nested-loop joins (quadratic: 50 s at
-- 100k ids). The filters keep the same rows as conditional LEFT JOINs would,
-- because an id with any line on a side always has a line that passes (rn =
-- 1 exists; duplicate_at_provider has executed lines), and an id without
-- lines keeps its NULL-extended row.
SET VARIABLE category_order = (SELECT list(category ORDER BY ord) FROM category_order);
-- Reasons are free text (a provider's detail, a reader's rejected value):
-- card numbers in them are masked here, by paybatch.MaskCardNumbers (the
-- paybatch_mask function, mask.go), so every report and export read from
-- recon_sorted carries them masked.
-- step 1: each id with its ledger line(s)
CREATE OR REPLACE TEMP TABLE recon_rows_l AS
SELECT r.category, r.merchant_transaction_id, lr.seq AS ledger_seq,
    lr.amount_minor AS ledger_amount_minor, lr.currency AS ledger_currency,
    lr.expected_status AS ledger_status,
    lr.source_file AS l_file, lr.source_sheet AS l_sheet, lr.source_row AS l_row
FROM recon AS r
LEFT JOIN recon_lr AS lr ON lr.merchant_transaction_id = r.merchant_transaction_id
WHERE r.merchant_transaction_id IS NOT NULL
  AND (lr.seq IS NULL OR r.category = 'duplicate_in_ledger' OR lr.rn = 1);
-- step 2: with its provider line(s), and the id-less rejects
CREATE OR REPLACE TEMP TABLE recon_rows_lp AS
SELECT x.category, x.merchant_transaction_id, x.ledger_seq, pr.seq AS provider_seq,
    x.ledger_amount_minor, x.ledger_currency, x.ledger_status,
    pr.amount_minor AS provider_amount_minor, pr.currency AS provider_currency,
    pr.status AS provider_status, pr.provider_id,
    mask_cards(pr.reason) AS reason,
    CASE WHEN pr.seq IS NOT NULL THEN pr.source_file  ELSE x.l_file  END AS source_file,
    CASE WHEN pr.seq IS NOT NULL THEN pr.source_sheet ELSE x.l_sheet END AS source_sheet,
    CASE WHEN pr.seq IS NOT NULL THEN pr.source_row   ELSE x.l_row   END AS source_row,
    pr.requested_date, pr.provider_date,
    coalesce(pr.seq, x.ledger_seq) // 10000000000 AS src_load
FROM recon_rows_l AS x
LEFT JOIN recon_pr AS pr ON pr.merchant_transaction_id = x.merchant_transaction_id
WHERE pr.seq IS NULL
   OR CASE x.category
          WHEN 'duplicate_at_provider' THEN pr.class NOT IN ('rejected', 'refused')
          WHEN 'rejected_before_send'  THEN true
          WHEN 'rejected_by_provider'  THEN true
          ELSE pr.rn = 1
      END
UNION ALL
SELECT r.category, '', NULL, p.seq, NULL, NULL, NULL, NULL, NULL,
    p.status, p.provider_id,
    mask_cards(p.reason),
    p.source_file, p.source_sheet, p.source_row, p.requested_date, p.provider_date, p.seq // 10000000000
FROM recon AS r
JOIN provider AS p ON p.seq = r.orphan_seq;
-- step 3: sorted. Not TEMP, unlike the two steps above: Rows and the Parquet
-- export read it through the connection pool, and a TEMP table is seen by
-- the connection that wrote it only (Rows read inside Rows failed).
CREATE OR REPLACE TABLE recon_sorted AS
SELECT x.category,
    -- the id as it leaves (rows, exports): card numbers masked (mask.go),
    -- sorted and matched on as written
    mask_cards(x.merchant_transaction_id) AS merchant_transaction_id,
    x.ledger_amount_minor, x.ledger_currency, x.ledger_status,
    x.provider_amount_minor, x.provider_currency, x.provider_status, x.provider_id, x.reason,
    x.source_file, x.source_sheet, x.source_row, x.requested_date, x.provider_date, x.src_load,
    -- the currencies' exponents, for the Parquet export (export_category.sql
    -- reads this table alone, so that its scan keeps the table's order)
    lc.exp AS ledger_exp, pc.exp AS provider_exp
FROM recon_rows_lp AS x
LEFT JOIN currencies AS lc ON lc.code = x.ledger_currency
LEFT JOIN currencies AS pc ON pc.code = x.provider_currency
ORDER BY list_position(getvariable('category_order'), x.category), x.merchant_transaction_id, x.ledger_seq NULLS FIRST, x.provider_seq NULLS FIRST;
DROP TABLE recon_rows_l;
DROP TABLE recon_rows_lp;
