-- PostgreSQL's journal gains an index for outcome pages of one file by
-- state. DuckDB keeps no such index (its scans skip row groups by their
-- zone maps): nothing to do, kept so both backends share version numbers.
SELECT 1;
