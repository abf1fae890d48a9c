-- One row per job run and its milestones, and the inputs it read.
CREATE TABLE runs (
	id                text PRIMARY KEY,
	started_at        timestamptz NOT NULL,
	submitted_at      timestamptz,
	reconciled_at     timestamptz,
	report_written_at timestamptz,
	report_path       text NOT NULL DEFAULT '',
	emailed_at        timestamptz,
	finished_at       timestamptz
);
CREATE TABLE run_inputs (
	run_id text NOT NULL REFERENCES runs (id),
	ord    integer NOT NULL,
	path   text NOT NULL,
	sha256 text NOT NULL,
	rows   bigint NOT NULL,
	PRIMARY KEY (run_id, ord)
);
