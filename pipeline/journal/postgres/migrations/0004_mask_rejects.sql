-- The DuckDB journal masks card numbers in rejects recorded before
-- RecordRejects masked them. No PostgreSQL journal predates masking:
-- nothing to do, kept so both backends share version numbers.
SELECT 1;
