-- The journal on PostgreSQL: the tables of the DuckDB journal's 0001 in
-- PostgreSQL's dialect. Unlike DuckDB, PostgreSQL keeps a primary key's
-- index on disk, so journal.key is the primary key: two rows under one
-- idempotency key cannot exist, whichever process writes.
-- State changes are written straight into journal (no journal_events): a
-- PostgreSQL UPDATE of a group of rows by key costs what an append costs.
CREATE TABLE journal (
	key                     text PRIMARY KEY,
	seq                     bigint GENERATED ALWAYS AS IDENTITY, -- order journaled
	provider                text NOT NULL,
	kind                    text NOT NULL,
	account                 text NOT NULL,
	merchant_transaction_id text NOT NULL,
	amount_minor            bigint,
	currency                text NOT NULL,
	body_sha256             text NOT NULL,
	state                   text NOT NULL,
	outcome                 text NOT NULL,
	provider_status         text NOT NULL,
	provider_id             text NOT NULL,
	order_id                text NOT NULL,
	reason_code             text NOT NULL,
	problem                 text NOT NULL,
	http_status             integer NOT NULL,
	attempts                integer NOT NULL,
	source_file             text NOT NULL,
	source_sheet            text NOT NULL,
	source_row              integer NOT NULL,
	created_at              timestamptz NOT NULL,
	updated_at              timestamptz NOT NULL,
	sent_at                 timestamptz,
	method                  text NOT NULL,
	path                    text NOT NULL,
	body                    text NOT NULL,
	terminal                text NOT NULL,
	transaction_ref         text NOT NULL,
	order_ref               text NOT NULL,
	mandate                 text NOT NULL,
	auddis                  text NOT NULL,
	bank_account            text NOT NULL,
	collection_date         date,
	description             text NOT NULL,
	default_narrative       text NOT NULL,
	provider_amount_minor   bigint,
	provider_date           date,
	replayed                boolean NOT NULL,
	polls                   integer NOT NULL,
	polled_at               timestamptz,
	final_at                timestamptz
);
CREATE INDEX journal_state ON journal (state, provider, account);
CREATE INDEX journal_source ON journal (source_file, source_sheet, source_row);
CREATE TABLE rejects (
	source_file             text,
	source_sheet            text,
	source_row              integer,
	column_name             text,
	value                   text,
	reason                  text,
	merchant_transaction_id text
);
CREATE TABLE inputs (
	path         text,
	sha256       text,
	rows         integer,
	kind         text,
	provider     text,
	processed_at timestamptz
);
CREATE TABLE conflicts (
	key                     text,
	merchant_transaction_id text,
	source_file             text,
	source_sheet            text,
	source_row              integer,
	journal_body_sha256     text,
	new_body_sha256         text,
	new_amount_minor        bigint,
	currency                text,
	detected_at             timestamptz
);
CREATE INDEX conflicts_key ON conflicts (key, new_body_sha256);
-- PostgreSQL only: one lease per credential. Only the holder sends with
-- the credential, so its rate limit is honoured by one pacer; a holder that
-- dies stops renewing, and after expires_at another process takes the
-- lease over (epoch + 1) and resumes the credential's rows.
CREATE TABLE credential_leases (
	credential  text PRIMARY KEY,
	holder      text NOT NULL,
	epoch       bigint NOT NULL,
	acquired_at timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL
);
-- PostgreSQL only: what each process holding the journal is doing (the
-- DuckDB journal keeps it in a file beside the journal).
CREATE TABLE progress (
	holder   text PRIMARY KEY,
	snapshot jsonb NOT NULL,
	updated  timestamptz NOT NULL
);
