-- Every operation that was executed and happened (class done), per currency.
SELECT currency, sum(amount_minor)::BIGINT
FROM provider
WHERE class = 'done' AND amount_minor IS NOT NULL
GROUP BY currency;
