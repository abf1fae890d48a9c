-- Non-blank rows in the stage. Must say "blank" exactly as stage_checked.sql
-- does; read from the stage directly, it costs no joins.
SELECT count(*)
FROM stage_src
WHERE NOT (
        trim(coalesce(merchant_transaction_id, '')) = ''
    AND trim(coalesce(amount, ''), ' ' || chr(9) || chr(10) || chr(13)) = ''
    AND trim(coalesce(currency, '')) = ''
    AND trim(coalesce(CASE getvariable('stage_kind') WHEN 'results' THEN status ELSE expected_status END, '')) = ''
);
