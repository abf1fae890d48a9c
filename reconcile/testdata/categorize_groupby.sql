-- One row per merchant_transaction_id (and one per id-less reader reject),
-- in exactly one category: the first of these whose condition holds.
--
--  1 rejected_by_provider   nothing executed; the provider refused a request for it
--  1 rejected_before_send   nothing executed and nothing sent (only rejected lines)
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
CREATE OR REPLACE TABLE recon_ref AS
WITH lines AS (
    -- both sides in one stream, grouped once (cheaper than two GROUP BYs and
    -- a full outer join)
    SELECT merchant_transaction_id AS id, true AS is_ledger,
        amount_minor, currency, expected AS class
    FROM ledger
    UNION ALL
    SELECT merchant_transaction_id, false, amount_minor, currency, class
    FROM provider
    WHERE merchant_transaction_id IS NOT NULL
),
g AS (
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
        any_value(class)        FILTER (WHERE NOT is_ledger AND class NOT IN ('rejected', 'refused')) AS p_class
    FROM lines
    GROUP BY id
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
    NOT (n_ledger = 1 OR (n_ledger = 0 AND n_exec = 1 AND n_rej = 0)) AS multi_line
FROM g
LEFT JOIN currencies AS c ON c.code = g.l_currency
UNION ALL
SELECT NULL, seq, 'rejected_before_send', false, 0, NULL, NULL, false
FROM provider
WHERE merchant_transaction_id IS NULL;
