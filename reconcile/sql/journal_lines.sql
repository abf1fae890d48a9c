-- The journal of the pipeline (ATTACHed read-only as journal_db), read
-- through the view it exports (journal_export: latest state per key, a
-- killed run's pending changes folded in), seen as provider lines. One
-- journal row = one operation paybatch meant to send.
--
--   state/outcome                                    class
--   final + succeeded                                done      (executed, happened)
--   final + failed | cancelled, or declined          not_done  (executed, did not happen)
--   rejected, conflict, answered by the provider     refused   (sent; the provider refused it)
--   rejected, conflict, never answered (http 0)      rejected  (refused before sending)
--   pending, sending, accepted, failed, or
--   final with outcome pending / empty               pending   (no final status yet)
--
-- Any other state is NULL here and reported as an error by journal_problems.sql.
-- journal_scope.sql narrows these lines to the ones a reconcile covers.
CREATE OR REPLACE TEMP VIEW journal_lines_all AS
SELECT
    key,
    nullif(trim(merchant_transaction_id), '') AS merchant_transaction_id,
    -- an operation that did not happen carries the amount the provider
    -- recorded, if any: a cancelled DD payment collected nothing, and a
    -- row refused (by the provider or before sending) has no provider
    -- amount — the amount asked for is not one
    CASE WHEN (state = 'final' AND outcome IN ('failed', 'cancelled')) OR state IN ('declined', 'rejected', 'conflict')
         THEN provider_amount_minor ELSE amount_minor END AS amount_minor,
    upper(nullif(trim(currency), '')) AS currency,
    CASE
        WHEN state = 'final' AND outcome = 'succeeded'                 THEN 'done'
        WHEN state = 'final' AND outcome IN ('failed', 'cancelled')    THEN 'not_done'
        WHEN state = 'final' AND coalesce(outcome, '') IN ('', 'pending') THEN 'pending'
        WHEN state = 'declined'                                        THEN 'not_done'
        WHEN state IN ('rejected', 'conflict') AND coalesce(http_status, 0) > 0 THEN 'refused'
        WHEN state IN ('rejected', 'conflict')                         THEN 'rejected'
        WHEN state IN ('pending', 'sending', 'accepted', 'failed')     THEN 'pending'
    END AS class,
    coalesce(nullif(provider_status, ''), state) AS status,
    nullif(provider_id, '') AS provider_id,
    -- an operation that happened has no reason to show (AUTH.APPROVED is not one)
    CASE WHEN NOT (state = 'final' AND outcome = 'succeeded')
         THEN nullif(concat_ws(': ', nullif(reason_code, ''), nullif(problem, '')), '') END AS reason,
    source_file, source_sheet, source_row, state, outcome,
    collection_date AS requested_date, provider_date, updated_at
FROM journal_db.journal_export;
