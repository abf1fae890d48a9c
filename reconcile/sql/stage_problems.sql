-- The first problems in the stage, in file order.
SELECT src_row, problem.role, problem.value, problem.reason
FROM stage_checked
WHERE problem IS NOT NULL
ORDER BY src_row
LIMIT 20;
