-- The detail behind the categories, one row per id, except:
--   duplicate_in_ledger   one row per ledger line (with the id's provider line)
--   duplicate_at_provider one row per executed provider line (with the first ledger line)
--   rejected_before_send  one row per rejected line (with the first ledger line)
-- Ordered (by rows_sorted.sql) by category precedence, then id, then line
-- order.
--
-- Only an id that may have several lines on a side (recon.special, a few per
-- cent) needs its lines numbered, so the window functions run over those
-- lines alone; every other line is its id's only line on its side (rn = 1).
-- Numbering every line took most of the memory of a report (1M ids per side
-- ran out of a 550MB DuckDB limit) and a quarter of its time.
CREATE OR REPLACE VIEW recon_rows AS
WITH special AS NOT MATERIALIZED (
    SELECT merchant_transaction_id FROM recon WHERE special
),
-- Only the columns a row shows travel through the joins. The file and sheet
-- of a line loaded from a file stay NULL here, with the load's number
-- (src_load): the path of a 10M-line file repeated on every row took
-- hundreds of MB in the joins and the sort. rows_page.sql and
-- export_category.sql name the file from loads.
lx AS NOT MATERIALIZED (
    SELECT merchant_transaction_id, seq, amount_minor, currency, expected_status,
        source_file, source_sheet, source_row
    FROM ledger
),
px AS NOT MATERIALIZED (
    SELECT merchant_transaction_id, seq, amount_minor, currency, class, status, provider_id, reason,
        source_file, source_sheet, source_row
    FROM provider
    WHERE merchant_transaction_id IS NOT NULL
),
lr AS (
    SELECT *, row_number() OVER (PARTITION BY merchant_transaction_id ORDER BY seq) AS rn
    FROM lx SEMI JOIN special USING (merchant_transaction_id)
    UNION ALL
    SELECT *, 1 FROM lx ANTI JOIN special USING (merchant_transaction_id)
),
pr AS (
    SELECT *, row_number() OVER (PARTITION BY merchant_transaction_id
                                 ORDER BY class = 'rejected', seq) AS rn
    FROM px SEMI JOIN special USING (merchant_transaction_id)
    UNION ALL
    SELECT *, 1 FROM px ANTI JOIN special USING (merchant_transaction_id)
),
rows AS (
    -- Joined on the id alone (hash joins), then filtered: a condition inside
    -- the ON clause made DuckDB fall back to nested-loop joins (quadratic: 50
    -- s at 100k ids). The filter keeps the same rows as the conditional
    -- LEFT JOINs would, because an id with any line on a side always has a
    -- line that passes (rn = 1 exists; duplicate_at_provider has executed
    -- lines), and an id without lines keeps its NULL-extended row.
    SELECT r.category, r.merchant_transaction_id, lr.seq AS ledger_seq, pr.seq AS provider_seq,
        lr.amount_minor AS ledger_amount_minor, lr.currency AS ledger_currency,
        lr.expected_status AS ledger_status,
        pr.amount_minor AS provider_amount_minor, pr.currency AS provider_currency,
        pr.status AS provider_status, pr.provider_id, pr.reason,
        CASE WHEN pr.seq IS NOT NULL THEN pr.source_file  ELSE lr.source_file  END AS source_file,
        CASE WHEN pr.seq IS NOT NULL THEN pr.source_sheet ELSE lr.source_sheet END AS source_sheet,
        CASE WHEN pr.seq IS NOT NULL THEN pr.source_row   ELSE lr.source_row   END AS source_row,
        coalesce(pr.seq, lr.seq) // 10000000000 AS src_load
    FROM recon AS r
    LEFT JOIN lr ON lr.merchant_transaction_id = r.merchant_transaction_id
    LEFT JOIN pr ON pr.merchant_transaction_id = r.merchant_transaction_id
    WHERE r.merchant_transaction_id IS NOT NULL
      AND (lr.seq IS NULL OR r.category = 'duplicate_in_ledger' OR lr.rn = 1)
      AND (pr.seq IS NULL
           OR CASE r.category
                  WHEN 'duplicate_at_provider' THEN pr.class <> 'rejected'
                  WHEN 'rejected_before_send'  THEN true
                  ELSE pr.rn = 1
              END)
    UNION ALL
    SELECT r.category, '', NULL, p.seq, NULL, NULL, NULL, NULL, NULL,
        p.status, p.provider_id, p.reason,
        p.source_file, p.source_sheet, p.source_row, p.seq // 10000000000
    FROM recon AS r
    JOIN provider AS p ON p.seq = r.orphan_seq
)
-- (no join with category_order here: DuckDB built that join's hash table on
-- these rows, beside the two above, and ran out of memory where the joins
-- alone fit; rows_sorted.sql orders by precedence from a list instead)
FROM rows;
