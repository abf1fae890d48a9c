-- The detail behind the categories, one row per id, except:
--   duplicate_in_ledger   one row per ledger line (with the id's provider line)
--   duplicate_at_provider one row per executed provider line (with the first ledger line)
--   rejected_before_send  one row per rejected line (with the first ledger line)
-- Ordered by category precedence, then id, then line order.
CREATE OR REPLACE VIEW recon_rows AS
WITH lr AS (
    SELECT x.* REPLACE (coalesce(x.source_file, ld.source_file) AS source_file,
                        coalesce(x.source_sheet, ld.source_sheet) AS source_sheet),
        row_number() OVER (PARTITION BY merchant_transaction_id ORDER BY seq) AS rn
    FROM ledger AS x
    LEFT JOIN loads AS ld ON ld.load_no = x.seq // 10000000000
),
pr AS (
    SELECT x.* REPLACE (coalesce(x.source_file, ld.source_file) AS source_file,
                        coalesce(x.source_sheet, ld.source_sheet) AS source_sheet),
        row_number() OVER (PARTITION BY merchant_transaction_id
                                 ORDER BY class = 'rejected', seq) AS rn
    FROM provider AS x
    LEFT JOIN loads AS ld ON ld.load_no = x.seq // 10000000000
    WHERE merchant_transaction_id IS NOT NULL
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
        CASE WHEN pr.seq IS NOT NULL THEN pr.source_row   ELSE lr.source_row   END AS source_row
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
        coalesce(p.source_file, ld.source_file), coalesce(p.source_sheet, ld.source_sheet), p.source_row
    FROM recon AS r
    JOIN provider AS p ON p.seq = r.orphan_seq
    LEFT JOIN loads AS ld ON ld.load_no = p.seq // 10000000000
)
SELECT o.ord, rows.*
FROM rows JOIN category_order AS o USING (category);
