-- Every ledger line, per currency.
SELECT currency, sum(amount_minor)::BIGINT FROM ledger GROUP BY currency;
