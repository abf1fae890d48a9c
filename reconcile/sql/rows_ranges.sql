-- Where each category's rows lie in recon_sorted (rows_sorted.sql).
SELECT category, min(rowid), max(rowid)
FROM recon_sorted
GROUP BY category
ORDER BY min(rowid);
