-- PostgreSQL's journal records which process claimed a row's latest attempt
-- (several processes share it). A DuckDB journal has one process at a time:
-- nothing to do, kept so both backends share version numbers.
SELECT 1;
