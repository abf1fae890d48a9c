-- packed_<n>, the fast road of Run's single pass over one loaded file (see
-- checked.sql for lines_<n> and checked_<n>, which decide every line, and
-- for the placeholders, which are the same). Run's fast pass writes this
-- query into its own statement (source.packedFrom in load.go); the view is
-- created only for a reader of it by name, the rows pass (ensurePacked), and
-- lines_<n> and checked_<n> only when something first reads them
-- (source.ensureChecked): a reconcile whose lines all take this road binds
-- none of them (~14 ms of CPU for checked_<n> and lines_<n> of a ledger and
-- a results file, BENCHMARKS.md #19 session 8; each view over a CSV's
-- read_csv runs DuckDB's sniffer again when created, #19 session 9).
--
-- packed_<n>: the lines on the fast road, packed for Run's single pass
-- (summary.sql), read from src_<n> in a few projections without lines_<n>'s
-- and checked_<n>'s work for lines off the road: a short text amount (see
-- short_m) or a typed one, in a currency of at most 3 decimals written in
-- one of its usual spellings, and a status (a ledger's none) likewise (see
-- c below). good: the line is
-- on that road and loads, with checked_<n>'s ok, id and pack exactly
-- (FuzzAmount and TestPackedMatchesChecked hold them equal) — but for an
-- id to trim (padded_id), which stays as written here: Run's pass finds it
-- after the join and goes to checked_<n>. blank: the
-- line has nothing at all (every role NULL), which checked_<n> calls blank
-- too; a line blank only once trimmed (spaces) is neither good nor blank
-- here. A line that is neither may still load (a long amount, a currency
-- with 4 decimals) or have a problem: the pass sees it as 'bad' and Run
-- reads the files again through checked_<n>, which decides. Reading
-- through lines_<n> cost ~0.08 cpu-s more per 1M + 1M CSV lines
-- (BENCHMARKS.md, #19 session 7), its chain of checked_<n> ~0.1 more.
CREATE OR REPLACE VIEW packed_/*n*/ AS
WITH s AS (
    SELECT src_row,
        -- the id as written, not trimmed: Run's pass tests each joined id
        -- once (padded_id in summary.sql) and sends one that needs trimming
        -- to checked_<n>; a test per line of each side cost ~0.05 cpu-s
        -- more per 1M + 1M lines (BENCHMARKS.md, #19 session 8)
        coalesce(merchant_transaction_id, '') AS id,
        amount, currency AS currency_raw,
        /*status{*/CASE /*kind*/ WHEN 'results' THEN status ELSE expected_status END/*else*/NULL::VARCHAR/*}status*/ AS status_raw,
        amount_v, amount_frac, amount_present,
        merchant_transaction_id IS NULL AS id_null,
        -- for the rows pass only (rowspass.go); a reader of id and pack
        -- alone (summary.sql) never reads them
        transaction_id AS provider_id_raw, reason AS reason_raw
    FROM src_/*n*/
),
-- The currency and the status are looked up once each, as written, among
-- their usual spellings (currency_lookup: 'USD', 'usd', 'Usd';
-- status_lookup: 'APPROVED', 'approved', 'Approved'): a line spelt
-- otherwise (padded, 'uSd') is off the road, and checked_<n>'s trimmed and
-- case-folded lookups decide it. The two fallback joins here cost ~0.03
-- cpu-s per 1M + 1M lines for lines that almost never need them
-- (BENCHMARKS.md, #19 session 8).
c AS (
    SELECT s.*,
        c0.exp,
        c0.no AS cur_no,
        -- a ledger line without an expected status expects the operation
        -- done (class 1); any other status is looked up as lines_<n> does
        CASE WHEN /*kind*/ = 'ledger' AND status_raw IS NULL THEN 1
             ELSE /*status{*/v0.cls_no/*else*/NULL::TINYINT/*}status*/ END AS cls_no
    FROM s
    LEFT JOIN currency_lookup AS c0 ON c0.raw = s.currency_raw
    /*status{*/LEFT JOIN status_lookup AS v0 ON v0.side = /*kind*/ AND v0.raw = s.status_raw/*else*//*}status*/
),
a AS (
    SELECT src_row, id, cur_no, cls_no, exp, amount_v, amount_frac, amount_present,
        status_raw, provider_id_raw, reason_raw,
        -- short: the amount × 1000 (short_m in checked_<n>), exact
        CASE WHEN exp <= 3 AND regexp_full_match(amount, '[+-]?[0-9]{1,12}(\.[0-9]{0,3})?')
             THEN (TRY_CAST(amount AS DECIMAL(18,3)) * 1000)::BIGINT END AS m,
        -- nothing at all: blank in checked_<n> too
        id_null AND amount IS NULL AND amount_present IS NOT true
            AND currency_raw IS NULL AND status_raw IS NULL AS blank
    FROM c
),
b AS (
    SELECT src_row, id, cur_no, cls_no, blank, status_raw, provider_id_raw, reason_raw,
        CASE
            WHEN m IS NOT NULL THEN
                CASE WHEN exp = 3 THEN m
                     WHEN m % [1000, 100, 10][exp + 1] = 0 THEN m // [1000, 100, 10][exp + 1]
                END
            -- typed: amount_v is the unscaled integer, amount_frac its
            -- scale; |amount_v| < 10^12 keeps amount_minor below 10^15
            WHEN amount_frac IS NOT NULL AND amount_present AND exp <= 3 AND amount_frac <= 6
                 AND amount_v IS NOT NULL AND abs(amount_v) < 1000000000000 THEN
                CASE WHEN amount_frac <= exp THEN amount_v * [1, 10, 100, 1000][exp - amount_frac + 1]
                     WHEN amount_v % [1, 10, 100, 1000, 10000, 100000, 1000000][amount_frac - exp + 1] = 0
                     THEN amount_v // [1, 10, 100, 1000, 10000, 100000, 1000000][amount_frac - exp + 1]
                END
        END AS amount_minor
    FROM a
)
SELECT src_row, id, blank, good,
    CASE WHEN good THEN (cls_no::BIGINT << 61) | (1::BIGINT << 60) | (cur_no::BIGINT << 51)
        | (amount_minor + 1125899906842624) END AS pack,
    -- what a report row shows of a good line (rowspass.go): its amount,
    -- currency number, status and free text as written (checked_<n> trims
    -- the text; a good line's status is a word of status_lookup, untrimmed)
    amount_minor, cur_no, status_raw, provider_id_raw, reason_raw
FROM (SELECT *, id <> '' AND amount_minor IS NOT NULL AND cls_no IS NOT NULL AS good FROM b);
