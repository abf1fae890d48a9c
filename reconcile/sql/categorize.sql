-- One row per merchant_transaction_id (and one per id-less reader reject),
-- in exactly one category: the first of these whose condition holds.
--
--  1 rejected_by_provider   nothing executed, and the provider refused a request
--                           for it (a refused line: sent and answered 4xx/409)
--  2 rejected_before_send   nothing executed and nothing sent: only rejected
--                           lines (a reader reject, a local conflict)
--  3 duplicate_at_provider  more than one executed line (done, not_done or pending)
--  4 duplicate_in_ledger    more than one ledger line
--  5 missing_at_provider    ledger line, no provider line at all
--  6 missing_in_ledger      executed line, no ledger line
--  7 pending                the executed line has no final status yet
--  8 currency_mismatch      ledger and provider currencies differ
--  9 status_mismatch        ledger expects done and the provider did not do it, or
--                           the ledger expects not done and it was done
-- 10 amount_mismatch        done, and |ledger − provider| > tolerance (per currency)
-- 11 matched                everything else
--
-- 1 and 2 exclude 3 (they need no executed line), so nothing can hide an id
-- executed twice. Rejected and refused lines are the "not executed" lines
-- (n_rej counts both, n_ref the refused ones). A provider line without a currency or amount (a void
-- journaled without one) skips the currency or amount comparison.
--
-- How (speed): grouping every line by id costs about three times the join of
-- the two sides, so the ids are split. An id with at most one ledger line, at
-- most one executed line and no rejected line (nearly all of them) is
-- categorised from a plain full outer join of ledger and provider. Every
-- other id ("special") goes through the exact per-id GROUP BY below. The
-- special ids are found by counting a 64-bit hash of the id per side: a
-- repeated hash is a superset of the repeated ids (a hash collision only
-- sends an innocent id down the exact path), so no id with two lines can be
-- missed.
CREATE OR REPLACE TEMP TABLE recon_multi_hash AS
SELECT h
FROM (
    SELECT hash(merchant_transaction_id) AS h FROM ledger
    UNION ALL
    SELECT hash(merchant_transaction_id, 'executed') FROM provider
    WHERE merchant_transaction_id IS NOT NULL AND class NOT IN ('rejected', 'refused')
)
GROUP BY h
HAVING count(*) > 1;

CREATE OR REPLACE TEMP TABLE recon_special AS
SELECT merchant_transaction_id FROM ledger
WHERE hash(merchant_transaction_id) IN (SELECT h FROM recon_multi_hash)
UNION
SELECT merchant_transaction_id FROM provider
WHERE merchant_transaction_id IS NOT NULL
  AND (class IN ('rejected', 'refused')
       OR hash(merchant_transaction_id, 'executed') IN (SELECT h FROM recon_multi_hash));

CREATE OR REPLACE TABLE recon AS
WITH simple AS (
    -- at most one line per side: the join gives the id's one row
    SELECT coalesce(l.merchant_transaction_id, p.merchant_transaction_id) AS id,
        (l.seq IS NOT NULL)::BIGINT AS n_ledger,
        (p.seq IS NOT NULL)::BIGINT AS n_exec,
        0::BIGINT                   AS n_rej,
        0::BIGINT                   AS n_ref,
        l.amount_minor AS l_amount, l.currency AS l_currency, l.expected AS l_expected,
        p.amount_minor AS p_amount, p.currency AS p_currency, p.class AS p_class,
        false AS special
    FROM (FROM ledger ANTI JOIN recon_special USING (merchant_transaction_id)) AS l
    FULL OUTER JOIN (
        FROM provider ANTI JOIN recon_special USING (merchant_transaction_id)
        WHERE merchant_transaction_id IS NOT NULL
    ) AS p ON p.merchant_transaction_id = l.merchant_transaction_id
),
lines AS (
    -- the special ids: both sides in one stream, grouped once
    SELECT merchant_transaction_id AS id, true AS is_ledger,
        amount_minor, currency, expected AS class
    FROM ledger SEMI JOIN recon_special USING (merchant_transaction_id)
    UNION ALL
    SELECT merchant_transaction_id, false, amount_minor, currency, class
    FROM provider SEMI JOIN recon_special USING (merchant_transaction_id)
),
special AS (
    SELECT id,
        count(*) FILTER (WHERE is_ledger)                                     AS n_ledger,
        count(*) FILTER (WHERE NOT is_ledger AND class NOT IN ('rejected', 'refused')) AS n_exec,
        count(*) FILTER (WHERE NOT is_ledger AND class IN ('rejected', 'refused'))     AS n_rej,
        count(*) FILTER (WHERE NOT is_ledger AND class = 'refused')                    AS n_ref,
        any_value(amount_minor) FILTER (WHERE is_ledger)                      AS l_amount,
        any_value(currency)     FILTER (WHERE is_ledger)                      AS l_currency,
        any_value(class)        FILTER (WHERE is_ledger)                      AS l_expected,
        any_value(amount_minor) FILTER (WHERE NOT is_ledger AND class NOT IN ('rejected', 'refused')) AS p_amount,
        any_value(currency)     FILTER (WHERE NOT is_ledger AND class NOT IN ('rejected', 'refused')) AS p_currency,
        any_value(class)        FILTER (WHERE NOT is_ledger AND class NOT IN ('rejected', 'refused')) AS p_class,
        true AS special
    FROM lines
    GROUP BY id
),
g AS (
    SELECT * FROM simple
    UNION ALL
    SELECT * FROM special
)
SELECT
    g.id AS merchant_transaction_id,
    NULL::BIGINT AS orphan_seq,
    CASE
        WHEN n_exec = 0 AND n_ref > 0                  THEN 'rejected_by_provider'
        WHEN n_exec = 0 AND n_rej > 0                  THEN 'rejected_before_send'
        WHEN n_exec > 1                                THEN 'duplicate_at_provider'
        WHEN n_ledger > 1                              THEN 'duplicate_in_ledger'
        WHEN n_exec = 0                                THEN 'missing_at_provider'
        WHEN n_ledger = 0                              THEN 'missing_in_ledger'
        WHEN p_class = 'pending'                       THEN 'pending'
        WHEN p_currency IS NOT NULL AND p_currency <> l_currency THEN 'currency_mismatch'
        WHEN p_class <> l_expected                     THEN 'status_mismatch'
        WHEN p_class = 'done' AND p_amount IS NOT NULL
             AND abs(l_amount - p_amount) > c.tol_minor THEN 'amount_mismatch'
        ELSE 'matched'
    END AS category,
    n_ledger > 0 AS has_ledger,
    n_exec,
    -- the id's amount for the category totals when it is a single line:
    -- its ledger line, or else its one executed line (NULL: several lines,
    -- summed by category_totals.sql from the lines themselves)
    CASE WHEN n_ledger = 1 THEN l_amount   WHEN n_ledger = 0 AND n_exec = 1 AND n_rej = 0 THEN p_amount   END AS total_amount,
    CASE WHEN n_ledger = 1 THEN l_currency WHEN n_ledger = 0 AND n_exec = 1 AND n_rej = 0 THEN p_currency END AS total_currency,
    NOT (n_ledger = 1 OR (n_ledger = 0 AND n_exec = 1 AND n_rej = 0)) AS multi_line,
    -- at most one line per side (not special): recon_rows.sql needs to
    -- number the lines of the special ids only
    g.special
FROM g
LEFT JOIN currencies AS c ON c.code = g.l_currency
UNION ALL
SELECT NULL, seq, 'rejected_before_send', false, 0, NULL, NULL, false, false
FROM provider
WHERE merchant_transaction_id IS NULL;

DROP TABLE recon_special;
DROP TABLE recon_multi_hash;
