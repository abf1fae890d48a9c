-- The rows of one file in one state and outcome, in source row order: an
-- outcome page of a batch ("the next 50 failed rows after row N") is one
-- range of this index per (state, outcome) the file holds, however sparse
-- the filter, while the batch is sent and after (Rows, reader.go). Without
-- it such a page walked every journal_source entry of the file after N,
-- fetching each row to test its state: seconds for a million-row batch
-- with no failed rows.
CREATE INDEX IF NOT EXISTS journal_source_state ON journal (source_file, source_sheet, state, outcome, source_row);
