-- The summary of rows_pass.sql's table: the rows of summary.sql's output
-- (category, ledger currency, provider currency, provider class, ids,
-- ledger_minor, provider_minor, l_rows, p_rows, noamount_minor,
-- ledger_done_minor), read by the same code in Run; the 'multi' and
-- 'lines' rows are Run's own checks of the table (runRowsPass).
WITH per_key AS (
    SELECT key, count(*) AS ids, sum(ledger_amount_minor) AS lsum, sum(provider_amount_minor) AS psum
    FROM recon_sorted
    GROUP BY key
)
/*summary_rows*/;
