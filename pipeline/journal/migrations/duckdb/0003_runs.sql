-- One row per job run and its milestones (a run is done when its report is
-- delivered), and the inputs it read.
CREATE TABLE runs (
	id                VARCHAR NOT NULL,
	started_at        TIMESTAMP NOT NULL,
	submitted_at      TIMESTAMP,
	reconciled_at     TIMESTAMP,
	report_written_at TIMESTAMP,
	report_path       VARCHAR NOT NULL DEFAULT '',
	emailed_at        TIMESTAMP,
	finished_at       TIMESTAMP
);
CREATE TABLE run_inputs (
	run_id VARCHAR NOT NULL,
	ord    INTEGER NOT NULL,
	path   VARCHAR NOT NULL,
	sha256 VARCHAR NOT NULL,
	rows   BIGINT NOT NULL
);
