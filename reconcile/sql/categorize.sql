-- One row per merchant_transaction_id (and one per id-less reader reject),
-- in exactly one category: the first of these whose condition holds.
--
--  1 rejected_before_send   provider side has only rejected lines (paybatch or
--                           the provider refused it; nothing was executed)
--  2 duplicate_at_provider  more than one executed line (done, not_done or pending)
--  3 duplicate_in_ledger    more than one ledger line
--  4 missing_at_provider    ledger line, no provider line at all
--  5 missing_in_ledger      executed line, no ledger line
--  6 pending                the executed line has no final status yet
--  7 currency_mismatch      ledger and provider currencies differ
--  8 status_mismatch        ledger expects done and the provider did not do it, or
--                           the ledger expects not done and it was done
--  9 amount_mismatch        done, and |ledger − provider| > tolerance (per currency)
-- 10 matched                everything else
--
-- 1 and 2 exclude each other (1 needs no executed line), so nothing can hide
-- an id executed twice. A provider line without a currency or amount (a void
-- journaled without one) skips the currency or amount comparison.
CREATE OR REPLACE TABLE recon AS
WITH l AS (
    SELECT merchant_transaction_id AS id,
        count(*)               AS n,
        any_value(amount_minor) AS amount_minor,
        any_value(currency)     AS currency,
        any_value(expected)     AS expected
    FROM ledger
    GROUP BY 1
),
p AS (
    SELECT merchant_transaction_id AS id,
        count(*) FILTER (WHERE class <> 'rejected')                  AS n_exec,
        count(*) FILTER (WHERE class = 'rejected')                   AS n_rej,
        any_value(amount_minor) FILTER (WHERE class <> 'rejected')   AS amount_minor,
        any_value(currency) FILTER (WHERE class <> 'rejected')       AS currency,
        any_value(class) FILTER (WHERE class <> 'rejected')          AS class
    FROM provider
    WHERE merchant_transaction_id IS NOT NULL
    GROUP BY 1
)
SELECT
    coalesce(l.id, p.id) AS merchant_transaction_id,
    NULL::BIGINT         AS orphan_seq,
    CASE
        WHEN coalesce(p.n_exec, 0) = 0 AND p.n_rej > 0 THEN 'rejected_before_send'
        WHEN p.n_exec > 1                              THEN 'duplicate_at_provider'
        WHEN l.n > 1                                   THEN 'duplicate_in_ledger'
        WHEN p.id IS NULL                              THEN 'missing_at_provider'
        WHEN l.id IS NULL                              THEN 'missing_in_ledger'
        WHEN p.class = 'pending'                       THEN 'pending'
        WHEN p.currency IS NOT NULL AND p.currency <> l.currency THEN 'currency_mismatch'
        WHEN p.class <> l.expected                     THEN 'status_mismatch'
        WHEN p.class = 'done' AND p.amount_minor IS NOT NULL
             AND abs(l.amount_minor - p.amount_minor) > c.tol_minor THEN 'amount_mismatch'
        ELSE 'matched'
    END AS category,
    l.id IS NOT NULL         AS has_ledger,
    coalesce(p.n_exec, 0)    AS n_exec
FROM l
FULL OUTER JOIN p ON p.id = l.id
LEFT JOIN currencies AS c ON c.code = l.currency
UNION ALL
SELECT NULL, seq, 'rejected_before_send', false, 0
FROM provider
WHERE merchant_transaction_id IS NULL;
