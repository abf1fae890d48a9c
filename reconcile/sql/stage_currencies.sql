-- The distinct currency codes in the stage; Go validates each against
-- ISO 4217 and fills the currencies table.
SELECT DISTINCT upper(trim(currency)) AS code
FROM stage_src
WHERE coalesce(trim(currency), '') <> '';
