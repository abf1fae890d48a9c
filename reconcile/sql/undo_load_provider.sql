-- Take back the rows of one load (a file with problems is refused whole).
DELETE FROM provider WHERE seq >= $load_no::BIGINT * 10000000000 AND seq < ($load_no::BIGINT + 1) * 10000000000;
