-- Every ledger line expecting done, per currency: a line expecting
-- cancelled/declined/failed expects no money to move (README: totals).
SELECT currency, sum(amount_minor)::BIGINT FROM ledger WHERE expected = 'done' GROUP BY currency;
