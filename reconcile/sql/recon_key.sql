-- The key of a joined row: summary.sql's per_line and rows_pass.sql's k
-- compute it alike (Run inserts this for /*key*/, reconKey in run.go), so
-- that Run sums rows_pass.sql's table as it sums summary.sql's groups. A
-- small integer that says everything the sums depend on, from bit 0 up:
--   0-3   category number, 1-based in the list of the summary's rows
--         (summary_rows.sql)
--   4-12  ledger currency number (0: none)    13-21 provider currency number
--   22-23 provider class   24-25 ledger class
--   26    a ledger line    27 a provider line  28 the provider line has an amount
-- Of the joined row: lid, pid (the ids), lpack, ppack (the packs) and lv,
-- pv, lc, pc, lcls, pcls (unpacked); $tols each currency number's tolerance
-- in minor units. /*padded*/: the joined id is to trim; /*bad*/: the
-- category of a line with a problem (2, or rows_pass.sql's error(), which
-- stops a pass over packed_<n>); /*over*/: the two amounts differ by more
-- than the tolerance (reconKey: abs(lv - pv) > the ledger currency's
-- tolerance; summary.sql's groups: a bit computed per joined row).
CASE
    -- a blank line or one with a problem has no id, so it never
    -- joins: both ids NULL, and a pack only if blank
    WHEN lid IS NULL AND pid IS NULL AND coalesce(lpack, ppack) IS NOT NULL THEN 1 -- blank
    WHEN lid IS NULL AND pid IS NULL                   THEN /*bad*/  -- bad
    -- packed_<n> joins the ids as written: an id to trim is 'bad'
    -- here, and checked_<n> trims it (false over checked_<n>)
    WHEN /*padded*/                                    THEN /*bad*/  -- bad
    WHEN pid IS NOT NULL AND pcls = 0                  THEN 3  -- rejected_before_send
    WHEN pid IS NULL                                   THEN 4  -- missing_at_provider
    WHEN lid IS NULL                                   THEN 5  -- missing_in_ledger
    WHEN pcls = 3                                      THEN 6  -- pending
    WHEN pc <> 0 AND pc <> lc                          THEN 7  -- currency_mismatch
    WHEN pcls <> lcls                                  THEN 8  -- status_mismatch
    WHEN pcls = 1 AND pv IS NOT NULL
         AND /*over*/                                  THEN 9 -- amount_mismatch
    ELSE 10                                                -- matched
END
| (coalesce(lc, 0) << 4) | (coalesce(pc, 0) << 13)
| (coalesce(pcls, 0) << 22) | (coalesce(lcls, 0) << 24)
| (CASE WHEN lpack IS NOT NULL THEN 67108864 ELSE 0 END)
| (CASE WHEN ppack IS NOT NULL THEN 134217728 ELSE 0 END)
| (CASE WHEN pv IS NOT NULL THEN 268435456 ELSE 0 END)
