-- The journal lines (already in provider, loads $loads) as summary.sql's
-- packed lines; see summary.sql for the layout. A line without an amount or
-- currency (a void) packs them as absent; id-less rejects are summed by
-- journal_orphans.sql instead.
SELECT p.merchant_transaction_id AS id,
    (CASE p.class WHEN 'rejected' THEN 0 WHEN 'done' THEN 1 WHEN 'not_done' THEN 2 ELSE 3 END::BIGINT << 61)
        | (CASE WHEN p.amount_minor IS NOT NULL THEN 1 ELSE 0 END::BIGINT << 60)
        | (coalesce(c.no, 0)::BIGINT << 51)
        | (coalesce(p.amount_minor, 0) + 1125899906842624) AS ppack
FROM provider AS p
LEFT JOIN currencies AS c ON c.code = p.currency
WHERE p.merchant_transaction_id IS NOT NULL
  AND list_contains($loads::BIGINT[], p.seq // 10000000000);
