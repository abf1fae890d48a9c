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
CREATE OR REPLACE TABLE status_vocab AS
SELECT * FROM (VALUES
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
