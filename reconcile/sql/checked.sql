-- The lines of one loaded file, each checked and converted: two views
-- over src_<n>, the file's columns by role (see load.go: a view over
-- read_parquet or read_csv, or over the stage table an XLSX sheet or a
-- CSV's text copy was appended to). lines_<n> trims the id and looks up the
-- currency and the status; checked_<n> converts every amount and names each
-- line's problem; packed_<n> (packed.sql) packs the lines on the fast road
-- for Run's single pass. Both are created when first read
-- (source.ensureChecked), packed_<n> by the rows pass (ensurePacked; Run's
-- fast pass writes packed.sql's query into its own). Placeholders, replaced by the loader with its
-- own values (never user input): /*n*/ the load number, /*kind*/ 'ledger' or
-- 'results', and the spaces placeholder the Unicode spaces as a string
-- literal (load.go: spacesSQL; it holds line breaks, so it is never written
-- in a comment). Blank lines (no id, amount, currency or status) are marked
-- and left out; they are not data. checked_<n> is read by summary.sql (Run's single pass, when a line
-- is off packed_<n>'s road), by to_ledger.sql / to_provider.sql and
-- rows_pass.sql (the lines for Rows), and by problems.sql, so all accept
-- exactly the same lines.
--
-- Amount rule (the same as paybatch.ParseSignedMoney): optional sign, digits
-- and at most one '.', no more significant decimals than the currency's
-- exponent (trailing zeros are not precision: '7.00' JPY is 7), never
-- rounded. The conversion is integer arithmetic on the digits:
--   '12.5'  USD → v = 125,  1 decimal  → 125 × 10^(2-1)       = 1250
--   '7.00'  JPY → v = 700,  2 decimals → 700 ÷ 10^2 (exact)    = 7
--   '10.005' USD → v = 10005, 3 decimals, 10005 mod 10 ≠ 0     → refused
-- No DECIMAL cast (which rounds '10.005' to 10.01) and no DOUBLE is involved.
--
-- Speed: this view is evaluated once per line of every file, so the usual
-- case takes the cheap road. A currency or status is first looked up exactly
-- as written ('USD', 'APPROVED'); only a value that is not found is trimmed
-- and case-folded for a second lookup. Strings are trimmed only where they
-- start or end with a space.
CREATE OR REPLACE VIEW lines_/*n*/ AS
WITH s0 AS (
    SELECT *,
        -- the amount as written is short and plain (the usual text case):
        -- at most 12 digits, then at most 3 decimals; such an amount is
        -- read as DECIMAL(18,3), exactly (short_m below)
        regexp_full_match(amount, '[+-]?[0-9]{1,12}(\.[0-9]{0,3})?') AS short,
    FROM src_/*n*/
),
s1 AS (
    SELECT *,
        -- the amount as written is already plain
        CASE WHEN short THEN true
             ELSE regexp_full_match(amount, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)') END AS raw_plain,
        CASE /*kind*/ WHEN 'results' THEN status ELSE expected_status END AS status_raw
    FROM s0
),
s AS (
    SELECT
        src_row, raw_plain, short, currency AS currency_raw, status_raw,
        -- ids are trimmed of every Unicode space at both ends (readers.TrimID,
        -- the one rule): a ledger's 'A<NBSP>' is the 'A' that was sent
        -- (padded_id, sql/schema.sql)
        CASE WHEN merchant_transaction_id IS NULL THEN ''
             WHEN padded_id(merchant_transaction_id)
             THEN trim(merchant_transaction_id, /*spaces*/) ELSE merchant_transaction_id END AS id,
        CASE WHEN raw_plain THEN amount WHEN amount IS NULL THEN ''
             ELSE trim(amount, /*spaces*/) END                                 AS amount,
        -- typed: a Parquet DECIMAL(w<=18, s) or integer amount, read without
        -- text: amount_v is its unscaled integer, amount_frac its scale s
        amount_frac IS NOT NULL                                                AS typed,
        amount_v, amount_frac, amount_present, amount_shown,
        transaction_id AS provider_id_raw, type AS type_raw, date AS date_raw, reason AS reason_raw
    FROM s1
),
p AS (
    SELECT s.*,
        coalesce(c0.code, c1.code, CASE WHEN c0.code IS NULL THEN upper(trim(coalesce(currency_raw, ''), /*spaces*/)) END) AS currency,
        coalesce(c0.exp, c1.exp) AS exp,
        coalesce(c0.no, c1.no)   AS cur_no,
        -- a ledger without an expected-status column has no status to look
        -- up: the loader keeps, of each status block, what follows its
        -- else marker, the values for a NULL status and no joins (checkedSQL
        -- in load.go); with a status column, what precedes it
        /*status{*/coalesce(v0.class, v1.class)   AS class,
        coalesce(v0.cls_no, v1.cls_no) AS vocab_cls_no,
        CASE WHEN v0.class IS NOT NULL THEN v0.word WHEN status_raw IS NULL THEN ''
             ELSE lower(trim(status_raw)) END                                  AS status_word,/*else*/NULL::VARCHAR AS class, NULL::TINYINT AS vocab_cls_no, '' AS status_word,/*}status*/
        -- plain: optional sign, digits and at most one '.', at least one digit
        CASE WHEN typed OR raw_plain THEN true
             ELSE regexp_full_match(amount, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)') END AS plain,
        CASE WHEN typed THEN NOT amount_present ELSE amount = '' END           AS amount_empty
    FROM s
    LEFT JOIN currencies AS c0 ON c0.code = s.currency_raw
    LEFT JOIN currencies AS c1 ON c1.code = CASE WHEN c0.code IS NULL AND s.currency_raw IS NOT NULL THEN upper(trim(s.currency_raw, /*spaces*/)) END
    /*status{*/LEFT JOIN status_lookup AS v0 ON v0.side = /*kind*/ AND v0.raw = s.status_raw
    LEFT JOIN status_vocab AS v1 ON v1.side = /*kind*/
        AND v1.word = CASE WHEN v0.class IS NULL AND s.status_raw IS NOT NULL THEN lower(trim(s.status_raw)) END/*else*//*}status*/
)
SELECT p.*,
    (id = '' AND amount_empty AND currency = '' AND status_word = '')      AS blank,
    -- a ledger line without an expected status expects the operation done
    CASE WHEN /*kind*/ = 'ledger' AND status_word = '' THEN 1 ELSE vocab_cls_no END AS cls_no
FROM p;

-- checked_<n>: every line of lines_<n> converted, with its problem.
CREATE OR REPLACE VIEW checked_/*n*/ AS
WITH
-- leading zeros and trailing decimal zeros are never significant: a long
-- plain amount ('000000000000000001.00', '10.000000000000000000') loses
-- them before its digits are counted (short ones need not)
z AS (
    SELECT p.*,
        -- a short amount in a currency of at most 3 decimals takes the cheap
        -- road: short_m is the amount × 1000, exact (DECIMAL(18,3) holds 12
        -- digits and 3 decimals, and their product by 1000, with no rounding
        -- and no overflow), and stands for v with
        -- fraclen 3; the string work below is for every other amount
        CASE WHEN short AND exp <= 3
             THEN (TRY_CAST(amount AS DECIMAL(18,3)) * 1000)::BIGINT END     AS short_m,
        CASE WHEN typed OR NOT plain OR short_m IS NOT NULL OR length(amount) <= 15 THEN amount
             WHEN NOT contains(amount, '.') THEN regexp_replace(amount, '^([+-]?)0+([0-9])', '\1\2')
             ELSE coalesce(nullif(regexp_replace(regexp_replace(amount, '^([+-]?)0+([0-9])', '\1\2'), '\.?0*$', ''), ''), '0') END AS amount_n
    FROM lines_/*n*/ AS p
),
-- digits after the '.', and the amount's digits as one integer:
-- '12.5' → fraclen 1, v 125
f AS (
    SELECT z.*,
        CASE WHEN typed THEN amount_frac
             WHEN short_m IS NOT NULL THEN 3
             WHEN strpos(amount_n, '.') = 0 THEN 0
             ELSE length(amount_n) - strpos(amount_n, '.') END                 AS fraclen
    FROM z
),
b AS (
    SELECT f.*,
        -- v has at most length(amount) digits; scaled by 10^(exp - fraclen)
        -- it stays below 10^18, inside BIGINT (typed: |v| < 10^14 before
        -- scaling up; a larger amount is too large in any case)
        CASE WHEN exp IS NULL THEN NULL
             WHEN typed THEN CASE WHEN fraclen >= exp OR abs(amount_v) < 100000000000000 THEN amount_v END
             WHEN short_m IS NOT NULL THEN short_m
             WHEN plain AND length(amount_n) + exp - fraclen <= 18
             THEN TRY_CAST(replace(amount_n, '.', '') AS BIGINT) END           AS v
    FROM f
),
m AS (
    SELECT b.*,
        -- exact integer scaling; trailing zeros beyond the exponent divide out,
        -- any other excess digit leaves amount_minor NULL (never rounded)
        CASE
            WHEN v IS NULL THEN NULL
            WHEN fraclen <= exp THEN v * [1, 10, 100, 1000, 10000, 100000][exp - fraclen + 1]
            WHEN v % [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
                      10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
                      1000000000000000, 10000000000000000, 100000000000000000][fraclen - exp + 1] = 0
            THEN v // [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
                      10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
                      1000000000000000, 10000000000000000, 100000000000000000][fraclen - exp + 1]
        END AS scaled
    FROM b
),
m2 AS (
    SELECT m.*,
        CASE WHEN abs(scaled) <= 1000000000000000 THEN scaled END AS amount_minor
    FROM m
)
SELECT
    m2.*,
    /*n*/ AS load_no,
    /*n*/::BIGINT * 10000000000 + src_row AS seq,
    CASE WHEN /*kind*/ = 'ledger' AND status_word = '' THEN 'done' ELSE class END AS line_class,
    nullif(trim(status_raw), '')      AS status_text,
    nullif(trim(provider_id_raw), '') AS provider_id,
    nullif(trim(type_raw), '')        AS type,
    nullif(trim(date_raw), '')        AS date,
    nullif(trim(reason_raw), '')      AS reason,
    -- ok: the line can be loaded (every problem below is excluded)
    NOT blank AND id <> '' AND amount_minor IS NOT NULL AND cls_no IS NOT NULL AS ok,
    -- the line packed into one BIGINT for summary.sql (valid when ok):
    -- bits 61-62 class number, 60 amount present, 51-59 currency number,
    -- 0-50 amount_minor + 2^50 (|amount_minor| <= 10^15 < 2^50)
    (cls_no::BIGINT << 61) | (1::BIGINT << 60) | (cur_no::BIGINT << 51)
        | (amount_minor + 1125899906842624) AS pack,
    CASE
        WHEN blank THEN NULL
        WHEN id = '' THEN {'role': 'merchant_transaction_id', 'value': id,
            'reason': 'missing merchant_transaction_id; every line needs the id it reconciles on'}
        WHEN currency = '' THEN {'role': 'currency', 'value': currency,
            'reason': 'missing currency; give the ISO 4217 code, e.g. USD'}
        WHEN exp IS NULL THEN {'role': 'currency', 'value': currency,
            'reason': 'not an ISO 4217 currency code'}
        WHEN amount_empty THEN {'role': 'amount', 'value': '',
            'reason': 'missing amount'}
        WHEN NOT plain THEN {'role': 'amount', 'value': coalesce(amount_shown, amount),
            'reason': 'not a plain decimal number (digits and one ''.'', no separators, symbols or exponent)'}
        WHEN v IS NULL THEN {'role': 'amount', 'value': coalesce(amount_shown, amount),
            'reason': 'too many digits'}
        WHEN scaled IS NULL THEN {'role': 'amount', 'value': coalesce(amount_shown, amount),
            'reason': 'more than ' || exp || ' decimal places for ' || currency || '; fix the amount, paybatch never rounds'}
        WHEN amount_minor IS NULL THEN {'role': 'amount', 'value': coalesce(amount_shown, amount),
            'reason': 'amount too large: the limit is 10^15 minor units (' || '1' || repeat('0', 15 - exp)
                || CASE WHEN exp > 0 THEN '.' || repeat('0', exp) ELSE '' END || ' ' || currency || ')'}
        WHEN /*kind*/ = 'results' AND status_word = '' THEN {'role': 'status', 'value': '',
            'reason': 'missing status'}
        WHEN status_word <> '' AND class IS NULL THEN
            {'role': CASE /*kind*/ WHEN 'results' THEN 'status' ELSE 'expected_status' END, 'value': status_raw,
             'reason': CASE /*kind*/
                 WHEN 'results' THEN 'unknown provider status (known: APPROVED DECLINED ERROR CANCELLED PROCESSING UNKNOWN, successful failed cancelled pending_submission submitted)'
                 ELSE 'unknown expected status (known: done/approved/successful/succeeded/completed/paid/settled, or declined/error/failed/cancelled/not_done; empty means done)'
             END}
        WHEN NOT ok THEN {'role': 'amount', 'value': coalesce(amount_shown, amount), 'reason': 'cannot be read'}
    END AS problem
FROM m2;
