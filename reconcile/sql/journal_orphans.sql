-- Journal lines without an id (batch rows the readers refused before they
-- had one): each is its own rejected_before_send. Like categorize.sql, they
-- add to the count only (a reader reject has no amount).
SELECT count(*)
FROM provider
WHERE merchant_transaction_id IS NULL
  AND list_contains($loads::BIGINT[], seq // 10000000000);
