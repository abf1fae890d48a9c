-- Journal lines whose amount does not fit summary.sql's pack (|amount| >= 2^50
-- minor units): Run then takes the exact path.
SELECT count(*)
FROM provider
WHERE list_contains($loads::BIGINT[], seq // 10000000000)
  AND abs(amount_minor) >= 1125899906842624;
