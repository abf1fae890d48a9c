-- The lines behind the report rows (rows_sorted.sql joins them to recon):
-- recon_lr the ledger lines, recon_pr the provider lines with an id, each
-- with rn, its number among its id's lines on its side (ledger in load
-- order; provider executed lines first, then rejected and refused ones).
--
-- Only an id that may have several lines on a side (recon.special, a few per
-- cent) needs its lines numbered, so the window functions run over those
-- lines alone; every other line is its id's only line on its side (rn = 1).
-- Numbering every line took most of the memory of a report (1M ids per side
-- ran out of a 550MB DuckDB limit) and a quarter of its time.
--
-- Only the columns a row shows are carried. The file and sheet of a line
-- loaded from a file stay NULL, with the load's number in seq: the path of a
-- 10M-line file repeated on every row took hundreds of MB in the joins and
-- the sort. rows_page.sql and export_category.sql name the file from loads.
CREATE OR REPLACE VIEW recon_lr AS
WITH special AS NOT MATERIALIZED (
    SELECT merchant_transaction_id FROM recon WHERE special
),
lx AS NOT MATERIALIZED (
    SELECT merchant_transaction_id, seq, amount_minor, currency, expected_status,
        source_file, source_sheet, source_row
    FROM ledger
)
SELECT *, row_number() OVER (PARTITION BY merchant_transaction_id ORDER BY seq) AS rn
FROM lx SEMI JOIN special USING (merchant_transaction_id)
UNION ALL
SELECT *, 1 FROM lx ANTI JOIN special USING (merchant_transaction_id);

CREATE OR REPLACE VIEW recon_pr AS
WITH special AS NOT MATERIALIZED (
    SELECT merchant_transaction_id FROM recon WHERE special
),
px AS NOT MATERIALIZED (
    SELECT merchant_transaction_id, seq, amount_minor, currency, class, status, provider_id, reason,
        source_file, source_sheet, source_row, requested_date, provider_date
    FROM provider
    WHERE merchant_transaction_id IS NOT NULL
)
SELECT *, row_number() OVER (PARTITION BY merchant_transaction_id
                             ORDER BY class IN ('rejected', 'refused'), seq) AS rn
FROM px SEMI JOIN special USING (merchant_transaction_id)
UNION ALL
SELECT *, 1 FROM px ANTI JOIN special USING (merchant_transaction_id);
