-- Status words and what they mean for reconciliation, matched case- and
-- space-insensitively. A status that is not listed here is an error naming
-- file, row and value: reconcile never guesses and never skips a row.
--
--   done      the operation happened (money moved)
--   not_done  the provider executed it and it did not happen
--   pending   no final status yet
--
-- side = 'results': words in a provider results file's status column
--   SmartRetry: APPROVED DECLINED ERROR CANCELLED PROCESSING UNKNOWN
--   SmarterPay: successful failed cancelled pending_submission submitted
--   paybatch's own outcomes: succeeded failed cancelled pending
-- side = 'ledger': words in a ledger's expected_status column (empty = done)
--
-- cls_no numbers the classes for summary.sql's packed lines: 0 rejected (a
-- journal line refused before sending), 1 done, 2 not_done, 3 pending.
CREATE OR REPLACE TABLE status_vocab AS
SELECT side, word, class,
    CASE class WHEN 'done' THEN 1 WHEN 'not_done' THEN 2 WHEN 'pending' THEN 3 END::TINYINT AS cls_no
FROM (VALUES
    ('results', 'approved',           'done'),
    ('results', 'successful',         'done'),
    ('results', 'succeeded',          'done'),
    ('results', 'declined',           'not_done'),
    ('results', 'error',              'not_done'),
    ('results', 'failed',             'not_done'),
    ('results', 'cancelled',          'not_done'),
    ('results', 'canceled',           'not_done'),
    ('results', 'processing',         'pending'),
    ('results', 'unknown',            'pending'),
    ('results', 'pending_submission', 'pending'),
    ('results', 'submitted',          'pending'),
    ('results', 'pending',            'pending'),
    ('ledger',  'done',               'done'),
    ('ledger',  'approved',           'done'),
    ('ledger',  'successful',         'done'),
    ('ledger',  'succeeded',          'done'),
    ('ledger',  'completed',          'done'),
    ('ledger',  'paid',               'done'),
    ('ledger',  'settled',            'done'),
    ('ledger',  'not_done',           'not_done'),
    ('ledger',  'declined',           'not_done'),
    ('ledger',  'error',              'not_done'),
    ('ledger',  'failed',             'not_done'),
    ('ledger',  'cancelled',          'not_done'),
    ('ledger',  'canceled',           'not_done')
) AS v(side, word, class);

-- The words as they are usually written (lower, UPPER and Title case), for
-- an exact lookup before any trimming or case folding (checked.sql): most
-- files use one of these, and string functions on every line cost more than
-- the lookup. The spellings of a word are distinct (list_distinct) and the
-- words of a side are distinct in any case (TestStatusLookupUnique): no
-- DISTINCT over the table, whose hash aggregate made this the costliest
-- statement of Open (4.7 of ~14 ms, BENCHMARKS.md #19 session 9).
CREATE OR REPLACE TABLE status_lookup AS
SELECT side, unnest(list_distinct([word, upper(word), upper(word[1]) || word[2:]])) AS raw, word, class, cls_no
FROM status_vocab;
