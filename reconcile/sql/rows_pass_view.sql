-- recon_sorted over the rows pass's table (rows_pass.sql): recon_pass's
-- rows in its order (rowid: the row's place, as the table rows_sorted.sql
-- writes numbers it), with that table's columns, types and order
-- (TestRowsPassViewColumns) and rows_pass.sql's key, l_seq and p_seq. What
-- recon_pass does not hold is worked out here, for the columns a reader
-- asks for (DuckDB pushes a reader's rowid range into recon_pass's scan):
-- the category and the currencies from key (a line's currency is the code
-- of its number: packed_<n>'s, and checked_<n>'s for a line that loads;
-- a blank line's is empty), the exponents likewise, the file's load and the
-- row from the seqs; no source file, sheet or date on this path.
-- Run replaces /*codes*/ with the currency codes by number (a VARCHAR
-- list literal) and /*exps*/ with their exponents (INTEGER), and each of
-- /*ledger_status*/, /*provider_status*/, /*provider_id*/ and /*reason*/
-- with recon_pass's column or, when no file of its side has it (the pass
-- does not carry it then), NULL.
CREATE OR REPLACE VIEW recon_sorted AS
SELECT rowid AS rowid,
    ['blank', 'bad', 'rejected_before_send', 'missing_at_provider', 'missing_in_ledger', 'pending',
     'currency_mismatch', 'status_mismatch', 'amount_mismatch', 'matched'][key & 15] AS category,
    merchant_transaction_id,
    ledger_amount_minor,
    CASE WHEN key & 67108864 <> 0 THEN coalesce(list_extract(/*codes*/::VARCHAR[], (key >> 4) & 511), '') END AS ledger_currency,
    /*ledger_status*/ AS ledger_status,
    provider_amount_minor,
    CASE WHEN key & 134217728 <> 0 THEN coalesce(list_extract(/*codes*/::VARCHAR[], (key >> 13) & 511), '') END AS provider_currency,
    /*provider_status*/ AS provider_status, /*provider_id*/ AS provider_id, /*reason*/ AS reason,
    NULL::VARCHAR AS source_file, NULL::VARCHAR AS source_sheet,
    (coalesce(p_seq, l_seq) % 10000000000)::INTEGER AS source_row,
    NULL::DATE AS requested_date, NULL::DATE AS provider_date,
    coalesce(p_seq, l_seq) // 10000000000 AS src_load,
    CASE WHEN key & 67108864 <> 0 THEN list_extract(/*exps*/::INTEGER[], (key >> 4) & 511) END AS ledger_exp,
    CASE WHEN key & 134217728 <> 0 THEN list_extract(/*exps*/::INTEGER[], (key >> 13) & 511) END AS provider_exp,
    key, l_seq, p_seq
FROM recon_pass;
