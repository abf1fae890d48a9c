-- The web server's tables (DuckDB migration 0005_web.sql) in PostgreSQL's dialect, so both
-- backends share version numbers. paybatch serve reads and writes them through DuckDB only
-- today (cmd/paybatch/web DuckStore): on a PostgreSQL journal they stay empty.
CREATE SEQUENCE IF NOT EXISTS web_user_id START 1;
CREATE SEQUENCE IF NOT EXISTS web_batch_id START 1;
CREATE SEQUENCE IF NOT EXISTS web_audit_seq START 1;
CREATE TABLE IF NOT EXISTS web_users (
	id            BIGINT PRIMARY KEY,
	name          text NOT NULL UNIQUE,
	role          text NOT NULL,
	password_hash text NOT NULL,
	disabled      BOOLEAN NOT NULL,
	created_at    timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
	token_sha256 text PRIMARY KEY,
	user_id      BIGINT NOT NULL,
	created_at   timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS web_batches (
	id               BIGINT PRIMARY KEY,
	kind             text NOT NULL,
	provider         text NOT NULL,
	file_name        text NOT NULL,
	path             text NOT NULL,
	sheet            text NOT NULL,
	sha256           text NOT NULL,
	size             BIGINT NOT NULL,
	uploader_id      BIGINT NOT NULL,
	uploaded_at      timestamptz NOT NULL,
	state            text NOT NULL,
	valid_only       BOOLEAN NOT NULL,
	rows             INTEGER NOT NULL,
	valid            INTEGER NOT NULL,
	rejected         INTEGER NOT NULL,
	summary          text NOT NULL,
	approvals_needed INTEGER NOT NULL,
	approvals        INTEGER NOT NULL,
	updated_at       timestamptz NOT NULL,
	message          text NOT NULL
);
CREATE TABLE IF NOT EXISTS web_approvals (
	batch_id BIGINT NOT NULL,
	user_id  BIGINT NOT NULL,
	approve  BOOLEAN NOT NULL,
	comment  text NOT NULL,
	decided_at timestamptz NOT NULL,
	PRIMARY KEY (batch_id, user_id)
);
CREATE TABLE IF NOT EXISTS web_audit (
	seq      BIGINT NOT NULL,
	batch_id BIGINT NOT NULL,
	user_name text NOT NULL,
	action   text NOT NULL,
	detail   text NOT NULL,
	logged_at timestamptz NOT NULL
);
