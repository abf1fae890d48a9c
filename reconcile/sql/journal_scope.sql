-- The journal lines this reconcile covers (LoadJournalScope): every line, or
-- for one run's report the lines of the run's input files that changed since
-- the run started, plus every line still open (class pending) whatever run
-- it came from, and every line reconciliation cannot read (journal_problems
-- refuses those). The scope placeholder below is replaced by that condition and AND, or
-- by nothing.
CREATE OR REPLACE TEMP VIEW journal_lines AS
SELECT * FROM journal_lines_all
WHERE /*scope*/ true;
