-- The reconciliation schema. Run once per Open: a reconcile always starts
-- from empty tables (a --db file keeps the last reconcile for inspection).
--
-- Amounts are BIGINT minor units of the row's currency (cents, pence, yen,
-- fils), never DOUBLE. currencies.exp says how many decimals a currency has.

CREATE OR REPLACE TABLE currencies (
    code      VARCHAR PRIMARY KEY, -- ISO 4217, upper case
    no        SMALLINT NOT NULL,   -- 1..511, this reconcile's own number for the code (summary.sql)
    exp       INTEGER NOT NULL,    -- minor-unit exponent: 2 USD, 0 JPY, 3 KWD
    tol_minor BIGINT  NOT NULL     -- --tolerance in minor units of this currency
);

-- The codes as files write them exactly (upper, lower and Title case:
-- 'USD', 'usd', 'Usd'), for packed_<n>'s one lookup per line (packed.sql);
-- any other spelling (padded, 'uSd') is found by checked.sql's trimmed and
-- case-folded lookup. Filled with currencies (reconcile.go: fillTables).
CREATE OR REPLACE TABLE currency_lookup (
    raw VARCHAR  NOT NULL,
    no  SMALLINT NOT NULL,
    exp INTEGER  NOT NULL
);

-- Every ledger line, as exported by the merchant.
CREATE OR REPLACE TABLE ledger (
    seq                     BIGINT  NOT NULL, -- load order: one line = one seq
    merchant_transaction_id VARCHAR NOT NULL,
    amount_minor            BIGINT  NOT NULL,
    currency                VARCHAR NOT NULL,
    type                    VARCHAR,
    date                    VARCHAR,
    expected                VARCHAR NOT NULL, -- 'done' | 'not_done'
    expected_status         VARCHAR,          -- as written in the ledger
    source_file             VARCHAR,          -- NULL: the file of its load (loads)
    source_sheet            VARCHAR,
    source_row              INTEGER
);

-- Every operation the provider side knows of: lines of a results file, or
-- rows of the pipeline's journal (and its reader rejects).
CREATE OR REPLACE TABLE provider (
    seq                     BIGINT  NOT NULL,
    merchant_transaction_id VARCHAR,          -- NULL only for a reader reject without an id
    amount_minor            BIGINT,           -- NULL when the operation has no amount (void)
    currency                VARCHAR,
    class                   VARCHAR NOT NULL, -- 'done' | 'not_done' | 'pending' | 'rejected'
    status                  VARCHAR,          -- provider's raw status, or the journal state
    provider_id             VARCHAR,
    reason                  VARCHAR,
    source_file             VARCHAR,          -- NULL: the file of its load (loads)
    source_sheet            VARCHAR,
    source_row              INTEGER,
    requested_date          DATE,             -- the collection/credit date asked for (Direct Debit)
    provider_date           DATE              -- the date the provider used (may differ: Bacs working days)
);

-- The file and sheet of each file load. Lines loaded from a file keep NULL in
-- source_file/source_sheet and name their load in seq (seq // 10^10 =
-- load_no): a path repeated on millions of rows would cost memory and time.
-- Journal lines carry their own source per row.
CREATE OR REPLACE TABLE loads (
    load_no      BIGINT PRIMARY KEY,
    source_file  VARCHAR NOT NULL,
    source_sheet VARCHAR NOT NULL
);

-- The precedence of categories (filled from paybatch.Categories).
CREATE OR REPLACE TABLE category_order (
    category VARCHAR PRIMARY KEY,
    ord      INTEGER NOT NULL
);

-- padded_id(x): the id x starts or ends with a space and must be trimmed
-- (readers.TrimID, the one rule: every Unicode space, the class
-- unicode.IsSpace — \pZ and the ASCII and C1 spaces). The cheapest exact
-- test found, each part a few nanoseconds where it decides: the first
-- character by comparing bytes (an id that starts with a byte from '!' to
-- 0x7F starts with no space; anything else asks the regexp); the last by
-- suffix() for each of the six ASCII spaces (tab, LF, VT, FF, CR, space:
-- the only ASCII characters of the class), and by a regexp anchored at the
-- end only for an id with a character beyond ASCII (strlen, its bytes,
-- exceeds length, its characters): 18 against 42 ns an id for the regexp
-- alone at the end (BENCHMARKS.md #19 session 9). The parts must stay
-- inside a CASE or WHERE condition, where DuckDB skips the later tests of an
-- OR or AND that the earlier ones decide; as a value it runs every part.
-- checked.sql trims an id where it is true; Run's single pass joins the ids
-- as written and sends a joined id for which it is true to checked_<n>
-- (summary.sql): one test per joined id instead of one per line of each
-- side. TestPaddedID holds it to readers.TrimID.
CREATE OR REPLACE MACRO padded_id(x) AS
    (NOT (x >= '!' AND x < chr(128)) AND regexp_matches(x, '^[\t\n\v\f\r\x{85}\pZ]'))
    OR suffix(x, ' ') OR suffix(x, chr(9)) OR suffix(x, chr(10)) OR suffix(x, chr(11)) OR suffix(x, chr(12)) OR suffix(x, chr(13))
    OR (strlen(x) <> length(x) AND regexp_matches(x, '[\t\n\v\f\r\x{85}\pZ]$'));
