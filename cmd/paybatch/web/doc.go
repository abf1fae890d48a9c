// Package web is `paybatch serve`: the finance web app. Finance staff sign
// in, upload a batch, read the validation page (counts, totals per currency,
// rejects grouped by reason, the rows as they will be sent), submit it for
// approval; a different person approves it (two above a per-currency
// threshold); the server then sends it through the same engine as
// `paybatch submit` (pipeline.Submit, one journal, the same readers), shows
// live progress and the per-row outcomes, and offers the downloads.
//
// Shape (after Miniflux and WTF Dial's http/): stdlib net/http with method
// and path patterns, one handler per page, html/template, every asset
// embedded, one stylesheet and one small script (live progress only).
// Handlers return errors; statusOf maps them to HTTP status in one place.
// Every route is declared once in routes() with the permission it needs, so
// no page or download can be reached without its role check.
//
// Storage is the Store interface (store.go): users, sessions, batches,
// approvals and the append-only audit trail. Its DuckDB implementation keeps
// them in the journal file, beside the rows they send.
package web
