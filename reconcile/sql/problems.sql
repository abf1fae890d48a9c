-- The first problems of load /*n*/, in file order.
SELECT src_row, problem.role, problem.value, problem.reason
FROM checked_/*n*/
WHERE problem IS NOT NULL
ORDER BY src_row
LIMIT 20;
