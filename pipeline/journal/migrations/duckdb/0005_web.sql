-- The web server's tables (paybatch serve, package cmd/paybatch/web):
-- users, sessions, batches, approvals and the append-only audit trail. They
-- live in the journal file so one file, one lock and one backup hold both
-- what was approved and what was sent. Only cmd/paybatch/web reads and
-- writes them (DuckStore); web_audit is never updated or deleted from.
CREATE SEQUENCE IF NOT EXISTS web_user_id START 1;
CREATE SEQUENCE IF NOT EXISTS web_batch_id START 1;
CREATE SEQUENCE IF NOT EXISTS web_audit_seq START 1;
CREATE TABLE IF NOT EXISTS web_users (
	id            BIGINT PRIMARY KEY,
	name          VARCHAR NOT NULL UNIQUE,
	role          VARCHAR NOT NULL,
	password_hash VARCHAR NOT NULL,
	disabled      BOOLEAN NOT NULL,
	created_at    TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
	token_sha256 VARCHAR PRIMARY KEY,
	user_id      BIGINT NOT NULL,
	created_at   TIMESTAMP NOT NULL,
	expires_at   TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS web_batches (
	id               BIGINT PRIMARY KEY,
	kind             VARCHAR NOT NULL,
	provider         VARCHAR NOT NULL,
	file_name        VARCHAR NOT NULL,
	path             VARCHAR NOT NULL,
	sheet            VARCHAR NOT NULL,
	sha256           VARCHAR NOT NULL,
	size             BIGINT NOT NULL,
	uploader_id      BIGINT NOT NULL,
	uploaded_at      TIMESTAMP NOT NULL,
	state            VARCHAR NOT NULL,
	valid_only       BOOLEAN NOT NULL,
	rows             INTEGER NOT NULL,
	valid            INTEGER NOT NULL,
	rejected         INTEGER NOT NULL,
	summary          VARCHAR NOT NULL,
	approvals_needed INTEGER NOT NULL,
	approvals        INTEGER NOT NULL,
	updated_at       TIMESTAMP NOT NULL,
	message          VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS web_approvals (
	batch_id BIGINT NOT NULL,
	user_id  BIGINT NOT NULL,
	approve  BOOLEAN NOT NULL,
	comment  VARCHAR NOT NULL,
	decided_at TIMESTAMP NOT NULL,
	PRIMARY KEY (batch_id, user_id)
);
CREATE TABLE IF NOT EXISTS web_audit (
	seq      BIGINT NOT NULL,
	batch_id BIGINT NOT NULL,
	user_name VARCHAR NOT NULL,
	action   VARCHAR NOT NULL,
	detail   VARCHAR NOT NULL,
	logged_at TIMESTAMP NOT NULL
);
