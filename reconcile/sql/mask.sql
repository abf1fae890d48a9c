-- The masking of card numbers in SQL (MaskSQL, mask.go): every text that
-- leaves DuckDB goes through mask_cards.
--
-- mask_cards(x): x with its card numbers masked by paybatch.MaskCardNumbers
-- (the paybatch_mask function, mask.go), the one masking rule of every
-- path out. has_card(x) is the cheap test of a 13-digit run (single spaces
-- or hyphens allowed between digits, as MaskCardNumbers reads them;
-- strlen first, a byte count, rules out the short text), so that the usual
-- text never crosses into Go. NULL stays NULL. A macro is inlined where it
-- is called: the same plan as the expression written out.
CREATE OR REPLACE MACRO has_card(x) AS
    strlen(x) >= 13 AND regexp_matches(x, '[0-9]([ -]?[0-9]){12}');
CREATE OR REPLACE MACRO mask_cards(x) AS
    CASE WHEN has_card(x) THEN paybatch_mask(x) ELSE x END;
