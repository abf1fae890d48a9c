-- Every ledger line expecting done, per currency: a line expecting
-- cancelled/declined/failed expects no money to move (README: totals).
-- Sums are HUGEINT, exact: Run refuses one beyond int64 (totals.go).
SELECT currency, sum(amount_minor) FROM ledger WHERE expected = 'done' GROUP BY currency;
