-- How many lines each side has: the same SELECTs as summary.sql's (Run puts
-- them in the placeholders), so exactly the lines it joined are counted.
-- summary.sql's l_rows and p_rows equal these two only when no id has a
-- line on one side and several on the other (see there).
SELECT
    (SELECT count(*) FROM (
        /*ledger*/
    )) AS ledger_lines,
    (SELECT count(*) FROM (
        /*provider*/
    )) AS provider_lines;
