-- Every stage row with its amount converted exactly to minor units, and the
-- first problem found in it (NULL when the row is good). Blank rows (no id,
-- amount, currency or status) are marked and left out; they are not data.
--
-- Amount rule (the same as paybatch.ParseSignedMoney): optional sign, digits
-- and at most one '.', no more significant decimals than the currency's
-- exponent (trailing zeros are not precision: '7.00' JPY is 7), never
-- rounded. The conversion is text surgery, not arithmetic:
--   '12.5' USD → '12' || rpad('5', 2, '0') = '1250' → 1250
-- so no DECIMAL cast (which rounds '10.005' to 10.01) and no DOUBLE is involved.
CREATE OR REPLACE VIEW stage_checked AS
WITH s AS (
    SELECT
        coalesce(stage.src_row, stage.rowid + m.first_row)::INTEGER            AS src_row,
        trim(coalesce(stage.merchant_transaction_id, ''))                      AS id,
        trim(coalesce(stage.amount, ''), ' ' || chr(9) || chr(10) || chr(13))   AS amount,
        upper(trim(coalesce(stage.currency, '')))                              AS currency,
        CASE m.kind WHEN 'results' THEN stage.status ELSE stage.expected_status END AS status_text,
        nullif(trim(stage.transaction_id), '')                                 AS provider_id,
        nullif(trim(stage.type), '')                                           AS type,
        nullif(trim(stage.date), '')                                           AS date,
        nullif(trim(stage.reason), '')                                         AS reason,
        m.kind, m.source_file, m.source_sheet, m.load_no
    FROM stage, stage_meta AS m
),
p AS (
    SELECT
        s.*,
        lower(trim(coalesce(status_text, '')))                          AS status_word,
        c.exp,
        regexp_full_match(amount, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)')    AS plain,
        regexp_extract(amount, '^[+-]?', 0)                             AS sign,
        regexp_extract(amount, '^[+-]?([0-9]*)', 1)                     AS int_digits,
        rtrim(regexp_extract(amount, '\.([0-9]*)$', 1), '0')            AS frac_digits
    FROM s LEFT JOIN currencies AS c ON c.code = s.currency
),
v AS (
    SELECT p.*, sv.class,
        (id = '' AND amount = '' AND currency = '' AND status_word = '') AS blank
    FROM p LEFT JOIN status_vocab AS sv ON sv.side = p.kind AND sv.word = p.status_word
)
SELECT
    v.*,
    CASE WHEN plain AND exp IS NOT NULL AND length(frac_digits) <= exp
              AND length(ltrim(int_digits, '0')) + exp <= 15
         THEN CAST(sign || int_digits || rpad(frac_digits, exp, '0') AS BIGINT)
    END AS amount_minor,
    CASE
        WHEN blank THEN NULL
        WHEN id = '' THEN {'role': 'merchant_transaction_id', 'value': id,
            'reason': 'missing merchant_transaction_id; every line needs the id it reconciles on'}
        WHEN currency = '' THEN {'role': 'currency', 'value': currency,
            'reason': 'missing currency; give the ISO 4217 code, e.g. USD'}
        WHEN exp IS NULL THEN {'role': 'currency', 'value': currency,
            'reason': 'not an ISO 4217 currency code'}
        WHEN amount = '' THEN {'role': 'amount', 'value': amount,
            'reason': 'missing amount'}
        WHEN NOT plain THEN {'role': 'amount', 'value': amount,
            'reason': 'not a plain decimal number (digits and one ''.'', no separators, symbols or exponent)'}
        WHEN length(frac_digits) > exp THEN {'role': 'amount', 'value': amount,
            'reason': 'more than ' || exp || ' decimal places for ' || currency || '; fix the amount, paybatch never rounds'}
        WHEN length(ltrim(int_digits, '0')) + exp > 15 THEN {'role': 'amount', 'value': amount,
            'reason': 'amount too large'}
        WHEN kind = 'results' AND status_word = '' THEN {'role': 'status', 'value': '',
            'reason': 'missing status'}
        WHEN status_word <> '' AND class IS NULL THEN
            {'role': CASE kind WHEN 'results' THEN 'status' ELSE 'expected_status' END, 'value': status_text,
             'reason': CASE kind
                 WHEN 'results' THEN 'unknown provider status (known: APPROVED DECLINED ERROR CANCELLED PROCESSING UNKNOWN, successful failed cancelled pending_submission submitted)'
                 ELSE 'unknown expected status (known: done/approved/successful/succeeded/completed/paid/settled, or declined/error/failed/cancelled/not_done; empty means done)'
             END}
    END AS problem
FROM v;
