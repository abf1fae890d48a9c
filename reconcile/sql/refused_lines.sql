-- Journal lines the provider refused (class 'refused', journal_lines.sql).
-- summary.sql's pack has two bits of class and no room for them, so Run
-- takes the exact path when there are any (refusals are few).
SELECT count(*)
FROM provider
WHERE class = 'refused' AND list_contains($loads::BIGINT[], seq // 10000000000);
