-- Every stage row with its amount converted exactly to minor units, whether
-- it can be loaded (ok), and otherwise the first problem found in it. Blank
-- rows (no id, amount, currency or status) are marked and left out; they are
-- not data. What the stage holds (kind, file, first row, load number) comes
-- from the variables the loader sets (SET VARIABLE stage_kind = ..., ...);
-- the file and sheet are recorded once per load in the loads table.
--
-- Amount rule (the same as paybatch.ParseSignedMoney): optional sign, digits
-- and at most one '.', no more significant decimals than the currency's
-- exponent (trailing zeros are not precision: '7.00' JPY is 7), never
-- rounded. The conversion is integer arithmetic on the digits:
--   '12.5'  USD → v = 125,  1 decimal  → 125 × 10^(2-1)       = 1250
--   '7.00'  JPY → v = 700,  2 decimals → 700 ÷ 10^2 (exact)    = 7
--   '10.005' USD → v = 10005, 3 decimals, 10005 mod 10 ≠ 0     → refused
-- No DECIMAL cast (which rounds '10.005' to 10.01) and no DOUBLE is involved.
CREATE OR REPLACE VIEW stage_checked AS
WITH s0 AS (
    -- the amount as written is already plain (the usual case): matched
    -- once here, not again below
    SELECT *, regexp_full_match(amount, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)') AS raw_plain
    FROM stage_src
),
s AS (
    -- trim only where there is something to trim: string functions cost
    -- more than the checks that avoid them
    SELECT
        src_row, raw_plain,
        CASE WHEN starts_with(merchant_transaction_id, ' ') OR ends_with(merchant_transaction_id, ' ')
             THEN trim(merchant_transaction_id) ELSE coalesce(merchant_transaction_id, '') END AS id,
        CASE WHEN raw_plain THEN amount
             ELSE trim(coalesce(amount, ''), ' ' || chr(9) || chr(10) || chr(13)) END     AS amount,
        -- typed: a Parquet DECIMAL(w<=18, s) or integer amount, read without
        -- text: amount_v is its unscaled integer, amount_frac its scale s
        amount_frac IS NOT NULL                                                AS typed,
        amount_v, amount_frac, amount_present,
        upper(CASE WHEN starts_with(currency, ' ') OR ends_with(currency, ' ')
                   THEN trim(currency) ELSE coalesce(currency, '') END)               AS currency,
        CASE getvariable('stage_kind') WHEN 'results' THEN status ELSE expected_status END AS status_text,
        lower(trim(coalesce(CASE getvariable('stage_kind') WHEN 'results' THEN status ELSE expected_status END, ''))) AS status_word,
        nullif(trim(transaction_id), '')                                       AS provider_id,
        nullif(trim(type), '')                                                 AS type,
        nullif(trim(date), '')                                                 AS date,
        nullif(trim(reason), '')                                               AS reason,
        getvariable('stage_kind')                                              AS kind
    FROM s0
),
p AS (
    SELECT s.*,
        -- plain: optional sign, digits and at most one '.', at least one digit
        CASE WHEN typed OR raw_plain THEN true
             ELSE regexp_full_match(amount, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)') END AS plain,
        CASE WHEN typed THEN NOT amount_present ELSE amount = '' END           AS amount_empty,
        -- digits after the '.', and the amount's digits as one integer:
        -- '12.5' → fraclen 1, v 125
        CASE WHEN typed THEN amount_frac
             WHEN strpos(amount, '.') = 0 THEN 0
             ELSE length(amount) - strpos(amount, '.') END                     AS fraclen,
        c.exp,
        sv.class
    FROM s
    LEFT JOIN currencies AS c ON c.code = s.currency
    LEFT JOIN status_vocab AS sv ON sv.side = s.kind AND sv.word = s.status_word
),
b AS (
    SELECT p.*,
        (id = '' AND amount_empty AND currency = '' AND status_word = '')      AS blank,
        -- v has at most length(amount) digits; scaled by 10^(exp - fraclen)
        -- it stays below 10^18, inside BIGINT (typed: |v| < 10^14 before
        -- scaling up; a larger amount is too large in any case)
        CASE WHEN exp IS NULL THEN NULL
             WHEN typed THEN CASE WHEN fraclen >= exp OR abs(amount_v) < 100000000000000 THEN amount_v END
             WHEN plain AND length(amount) + exp - fraclen <= 18
             THEN TRY_CAST(replace(amount, '.', '') AS BIGINT) END             AS v
    FROM p
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
        CASE WHEN abs(scaled) < 1000000000000000 THEN scaled END AS amount_minor
    FROM m
)
SELECT
    m2.*,
    getvariable('stage_load_no') AS load_no,
    -- ok: the row can be loaded (every problem below is excluded)
    NOT blank AND id <> '' AND amount_minor IS NOT NULL
        AND (class IS NOT NULL OR (kind = 'ledger' AND status_word = '')) AS ok,
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
        WHEN NOT plain THEN {'role': 'amount', 'value': amount,
            'reason': 'not a plain decimal number (digits and one ''.'', no separators, symbols or exponent)'}
        WHEN v IS NULL THEN {'role': 'amount', 'value': amount,
            'reason': 'too many digits'}
        WHEN scaled IS NULL THEN {'role': 'amount', 'value': amount,
            'reason': 'more than ' || exp || ' decimal places for ' || currency || '; fix the amount, paybatch never rounds'}
        WHEN amount_minor IS NULL THEN {'role': 'amount', 'value': amount,
            'reason': 'amount too large (at most 10^15 minor units)'}
        WHEN kind = 'results' AND status_word = '' THEN {'role': 'status', 'value': '',
            'reason': 'missing status'}
        WHEN status_word <> '' AND class IS NULL THEN
            {'role': CASE kind WHEN 'results' THEN 'status' ELSE 'expected_status' END, 'value': status_text,
             'reason': CASE kind
                 WHEN 'results' THEN 'unknown provider status (known: APPROVED DECLINED ERROR CANCELLED PROCESSING UNKNOWN, successful failed cancelled pending_submission submitted)'
                 ELSE 'unknown expected status (known: done/approved/successful/succeeded/completed/paid/settled, or declined/error/failed/cancelled/not_done; empty means done)'
             END}
        WHEN NOT ok THEN {'role': 'amount', 'value': amount, 'reason': 'cannot be read'}
    END AS problem
FROM m2;
