package reconcile

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// Rows must stay a hash-join plan: a condition inside a LEFT JOIN's ON
// clause once made DuckDB pick nested-loop joins, quadratic in the ids
// (50 s for the rows of 100k ids). The plan, unlike a timing, cannot flake.
func TestRowsPlanHasNoNestedLoopJoin(t *testing.T) {
	ctx := context.Background()
	r := MustOpen(t, "")
	if err := r.LoadLedger(ctx, "testdata/ledger.csv", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadResults(ctx, "testdata/results.csv", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, err := range r.Rows(ctx) { // recon and its rows view are built
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := r.db.QueryContext(ctx, "EXPLAIN "+query("rows_select"), sql.Named("categories", []string{"matched"}))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var kind, text string
		if err := rows.Scan(&kind, &text); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(text)
	}
	if !strings.Contains(plan.String(), "HASH_JOIN") || strings.Contains(plan.String(), "NL_JOIN") {
		t.Fatalf("rows_select.sql plan has a nested-loop join:\n%s", plan.String())
	}
}
