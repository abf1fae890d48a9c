-- Macros of export_csv.sql: the rules of writers.WriteCSV, in SQL, so that
-- DuckDB writes the per-category CSV exports itself with COPY (the rows
-- never cross into Go): the tests' reference (ExportCSV, exportcsv_test.go).
-- TEMP: the connection that runs the COPY defines them.
--
-- pb_amount: minor units as Money.String() writes them, with exactly the
-- currency's decimals: 12050, 2 → '120.50'; 1500, 0 → '1500'; -7, 2 → '-0.07'.
CREATE OR REPLACE TEMP MACRO pb_amount(minor, e) AS
    CASE WHEN e = 0 THEN minor::VARCHAR
         ELSE CASE WHEN minor < 0 THEN '-' ELSE '' END
              || (abs(minor) // [1, 10, 100, 1000, 10000, 100000][e + 1])::VARCHAR || '.'
              || lpad((abs(minor) % [1, 10, 100, 1000, 10000, 100000][e + 1])::VARCHAR, e, '0')
    END;
-- pb_neut: writers' csvText: a leading apostrophe before text a spreadsheet
-- would evaluate (= + - @ TAB CR first).
CREATE OR REPLACE TEMP MACRO pb_neut(s) AS
    CASE WHEN starts_with(s, '=') OR starts_with(s, '+') OR starts_with(s, '-') OR starts_with(s, '@')
              OR starts_with(s, chr(9)) OR starts_with(s, chr(13)) THEN '''' || s ELSE s END;
-- pb_q: one field as encoding/csv writes it: empty for NULL or ''; quoted
-- (quotes doubled) when it holds a comma, a quote, CR or LF, is \. , or
-- starts with white space (unicode.IsSpace); as it is otherwise. The
-- cheap byte tests go first: a regular expression per field cost most of
-- the export's CPU. unicode(s) is the code point of the first character.
CREATE OR REPLACE TEMP MACRO pb_q(s) AS
    CASE WHEN s IS NULL OR s = '' THEN ''
         WHEN contains(s, ',') OR contains(s, '"') OR contains(s, chr(10)) OR contains(s, chr(13)) OR s = '\.'
              OR unicode(s) IN (9, 10, 11, 12, 13, 32, 133, 160, 5760, 8232, 8233, 8239, 8287, 12288)
              OR unicode(s) BETWEEN 8192 AND 8202
             THEN '"' || replace(s, '"', '""') || '"'
         ELSE s
    END;
