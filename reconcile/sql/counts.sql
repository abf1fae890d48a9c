-- How many ids landed in each category.
SELECT category, count(*) FROM recon GROUP BY category;
