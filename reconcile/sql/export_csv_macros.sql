-- Macros of export_csv.sql: the rules of writers.WriteCSV, in SQL, so that
-- DuckDB writes the per-category CSV exports itself with COPY (the rows
-- never cross into Go). TEMP: the connection that runs the COPY defines them.
--
-- pb_amount: minor units as Money.String() writes them, with exactly the
-- currency's decimals: 12050, 2 → '120.50'; 1500, 0 → '1500'; -7, 2 → '-0.07'.
CREATE OR REPLACE TEMP MACRO pb_amount(minor, e) AS
    CASE WHEN e = 0 THEN minor::VARCHAR
         ELSE CASE WHEN minor < 0 THEN '-' ELSE '' END
              || (abs(minor) // [1, 10, 100, 1000, 10000, 100000][e + 1])::VARCHAR || '.'
              || lpad((abs(minor) % [1, 10, 100, 1000, 10000, 100000][e + 1])::VARCHAR, e, '0')
    END;
-- pb_mask: paybatch.MaskCardNumbers (the paybatch_mask function, mask.go),
-- called only where a 13-digit run is possible.
CREATE OR REPLACE TEMP MACRO pb_mask(s) AS
    CASE WHEN regexp_matches(s, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(s) ELSE s END;
-- pb_neut: writers' csvText: a leading apostrophe before text a spreadsheet
-- would evaluate (= + - @ TAB CR first).
CREATE OR REPLACE TEMP MACRO pb_neut(s) AS
    CASE WHEN regexp_matches(s, '^[-=+@\t\r]') THEN '''' || s ELSE s END;
-- pb_q: one field as encoding/csv writes it: empty for NULL or ''; quoted
-- (quotes doubled) when it holds a comma, a quote, CR or LF, is \. , or
-- starts with white space (unicode.IsSpace); as it is otherwise.
CREATE OR REPLACE TEMP MACRO pb_q(s) AS
    CASE WHEN s IS NULL THEN ''
         WHEN s = '\.' OR regexp_matches(s, '[,"\r\n]|^[\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]')
             THEN '"' || replace(s, '"', '""') || '"'
         ELSE s
    END;
