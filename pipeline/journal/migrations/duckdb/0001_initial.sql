-- The schema as it was before versioning (paybatch up to issue #17). Every
-- statement is IF NOT EXISTS, so a journal written then is adopted as is.
--
-- journal.key is unique, but not declared PRIMARY KEY: DuckDB keeps a
-- primary key's index in memory whole (≈ 150 MB per million keys, and it
-- is rewritten at every checkpoint), which would make memory and ingest
-- time grow with the journal. Ingest is the only writer of new rows and
-- checks each key against the journal before appending it, under the
-- journal's lock, and verifies uniqueness before anything is sent.
-- Journals created before that keep their primary key.
CREATE TABLE IF NOT EXISTS journal (
	key                     VARCHAR NOT NULL,
	provider                VARCHAR NOT NULL,
	kind                    VARCHAR NOT NULL,
	account                 VARCHAR NOT NULL,
	merchant_transaction_id VARCHAR NOT NULL,
	amount_minor            BIGINT,
	currency                VARCHAR NOT NULL,
	body_sha256             VARCHAR NOT NULL,
	state                   VARCHAR NOT NULL,
	outcome                 VARCHAR NOT NULL,
	provider_status         VARCHAR NOT NULL,
	provider_id             VARCHAR NOT NULL,
	order_id                VARCHAR NOT NULL,
	reason_code             VARCHAR NOT NULL,
	problem                 VARCHAR NOT NULL,
	http_status             INTEGER NOT NULL,
	attempts                INTEGER NOT NULL,
	source_file             VARCHAR NOT NULL,
	source_sheet            VARCHAR NOT NULL,
	source_row              INTEGER NOT NULL,
	created_at              TIMESTAMP NOT NULL,
	updated_at              TIMESTAMP NOT NULL,
	sent_at                 TIMESTAMP,
	-- what is needed to resend byte-identically and to look a row up again
	method                  VARCHAR NOT NULL,
	path                    VARCHAR NOT NULL,
	body                    VARCHAR NOT NULL,
	terminal                VARCHAR NOT NULL,
	transaction_ref         VARCHAR NOT NULL,
	order_ref               VARCHAR NOT NULL,
	mandate                 VARCHAR NOT NULL,
	auddis                  VARCHAR NOT NULL,
	bank_account            VARCHAR NOT NULL,
	collection_date         DATE,
	description             VARCHAR NOT NULL,
	default_narrative       VARCHAR NOT NULL,
	-- what the provider recorded, when it said
	provider_amount_minor   BIGINT,
	provider_date           DATE,
	replayed                BOOLEAN NOT NULL,
	polls                   INTEGER NOT NULL,
	polled_at               TIMESTAMP,
	final_at                TIMESTAMP
);
-- State changes are appended here first (cheap, durable), then folded into
-- journal in bulk at the end of a run or when the journal is next opened.
CREATE TABLE IF NOT EXISTS journal_events (
	seq                   BIGINT NOT NULL,
	key                   VARCHAR NOT NULL,
	state                 VARCHAR NOT NULL,
	outcome               VARCHAR NOT NULL,
	provider_status       VARCHAR NOT NULL,
	provider_id           VARCHAR NOT NULL,
	order_id              VARCHAR NOT NULL,
	reason_code           VARCHAR NOT NULL,
	problem               VARCHAR NOT NULL,
	http_status           INTEGER NOT NULL,
	attempts              INTEGER NOT NULL,
	updated_at            TIMESTAMP NOT NULL,
	sent_at               TIMESTAMP,
	provider_amount_minor BIGINT,
	provider_date         DATE,
	replayed              BOOLEAN NOT NULL,
	polls                 INTEGER NOT NULL,
	polled_at             TIMESTAMP,
	final_at              TIMESTAMP
);
CREATE TABLE IF NOT EXISTS rejects (
	source_file             VARCHAR,
	source_sheet            VARCHAR,
	source_row              INTEGER,
	column_name             VARCHAR,
	value                   VARCHAR,
	reason                  VARCHAR,
	merchant_transaction_id VARCHAR
);
CREATE TABLE IF NOT EXISTS inputs (
	path         VARCHAR,
	sha256       VARCHAR,
	rows         INTEGER,
	kind         VARCHAR,
	provider     VARCHAR,
	processed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS conflicts (
	key                     VARCHAR,
	merchant_transaction_id VARCHAR,
	source_file             VARCHAR,
	source_sheet            VARCHAR,
	source_row              INTEGER,
	journal_body_sha256     VARCHAR,
	new_body_sha256         VARCHAR,
	new_amount_minor        BIGINT,
	currency                VARCHAR,
	detected_at             TIMESTAMP
);
