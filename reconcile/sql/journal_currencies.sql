SELECT DISTINCT currency FROM journal_lines WHERE currency IS NOT NULL;
