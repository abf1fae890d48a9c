package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

// Rows must stay a hash-join plan: a condition inside a LEFT JOIN's ON
// clause once made DuckDB pick nested-loop joins, quadratic in the ids
// (50 s for the rows of 100k ids). The plan, unlike a timing, cannot flake.
func TestRowsPlanHasNoNestedLoopJoin(t *testing.T) {
	ctx := context.Background()
	r, _ := runTestdata(t)
	for _, err := range r.Rows(ctx) { // recon and its rows view are built
		if err != nil {
			t.Fatal(err)
		}
	}
	// each step of rows_sorted.sql, explained and then run (the next step
	// reads what it writes)
	conn, err := r.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	joins := 0
	for _, stmt := range strings.Split(query("rows_sorted"), ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		_, sel, isCreate := strings.Cut(stmt, "CREATE OR REPLACE TEMP TABLE ")
		if isCreate {
			_, sel, _ = strings.Cut(sel, " AS\n")
			plan := explain(t, conn, sel)
			if strings.Contains(plan, "NL_JOIN") {
				t.Fatalf("rows_sorted.sql plan has a nested-loop join:\n%s", plan)
			}
			joins += strings.Count(plan, "HASH_JOIN")
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if joins < 2 {
		t.Fatalf("rows_sorted.sql: %d hash joins, want one per step at least", joins)
	}
}

func explain(t *testing.T, conn *sql.Conn, q string) string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "EXPLAIN "+q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
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
	return plan.String()
}

// Rows reads recon_sorted a page at a time (rows_page.sql). Whatever the
// page size, and whichever categories are asked for, the rows must be the
// same rows in the same order: category precedence, then id.
func TestRowsPages(t *testing.T) {
	ctx := context.Background()
	r, _ := runTestdata(t)
	key := func(row paybatch.ReconRow) string {
		return fmt.Sprintf("%s|%s|%s|%s|%d", row.Category, row.MerchantTxID, moneyStr(row.LedgerAmount), moneyStr(row.ProviderAmount), row.Source.Row)
	}
	read := func(page int, cats ...paybatch.Category) []string {
		r.pageRows = page
		var out []string
		for row, err := range r.Rows(ctx, cats...) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, key(row))
		}
		return out
	}
	all := read(0)
	cats := map[string]bool{}
	prec := map[paybatch.Category]int{}
	for i, c := range paybatch.Categories {
		prec[c] = i
	}
	var prev paybatch.ReconRow
	for i, row := range collectRows(t, r) {
		cats[string(row.Category)] = true
		if i > 0 && (prec[row.Category] < prec[prev.Category] ||
			prec[row.Category] == prec[prev.Category] && row.MerchantTxID < prev.MerchantTxID) {
			t.Fatalf("row %d (%s %s) comes after %s %s", i, row.Category, row.MerchantTxID, prev.Category, prev.MerchantTxID)
		}
		prev = row
	}
	if len(all) < 10 || len(cats) < 5 || !cats["duplicate_in_ledger"] {
		t.Fatalf("testdata too thin: %d rows in %d categories", len(all), len(cats))
	}
	for _, page := range []int{1, 2, 3, 7} {
		if got := read(page); strings.Join(got, "\n") != strings.Join(all, "\n") {
			t.Errorf("page %d:\n%s\nwant\n%s", page, strings.Join(got, "\n"), strings.Join(all, "\n"))
		}
		// two categories, asked for out of precedence order
		some := []paybatch.Category{paybatch.CatMatched, paybatch.CatDuplicateInLedger}
		var want []string
		for _, k := range all {
			if strings.HasPrefix(k, "matched|") || strings.HasPrefix(k, "duplicate_in_ledger|") {
				want = append(want, k)
			}
		}
		if got := read(page, some...); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("page %d, %v:\n%s\nwant\n%s", page, some, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// stopping early ends the sequence without an error
	r.pageRows = 2
	n := 0
	for _, err := range r.Rows(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
}

// Rows and ExportParquet read recon_sorted through the connection pool, so
// it must be visible on every connection: here Rows is read inside Rows (the
// outer page holds one connection, the inner query gets another), and the
// Parquet export runs while that connection is still busy.
func TestRowsOnAnyConnection(t *testing.T) {
	ctx := context.Background()
	r, _ := runTestdata(t)
	r.pageRows = 1
	want := len(collectRows(t, r, paybatch.CatMatched))
	outer := 0
	for _, err := range r.Rows(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		outer++
		if outer > 1 {
			continue
		}
		if got := len(collectRows(t, r, paybatch.CatMatched)); got != want {
			t.Errorf("inner Rows: %d matched rows, want %d", got, want)
		}
		if _, err := r.ExportParquet(ctx, t.TempDir()); err != nil {
			t.Errorf("ExportParquet inside Rows: %v", err)
		}
	}
}

// Rows reads its pages on a goroutine of its own (rows.go) while the caller
// takes the rows already made: a context cancelled part-way must end the
// sequence with an error — never a silent, short end that a writer would
// take for every row — whether it comes inside a page or between two; the
// rows before it are the first rows, in order; and a caller that stops
// early or reads the sequence again gets the same rows.
func TestRowsReadAheadCancel(t *testing.T) {
	r, _ := runTestdata(t)
	all := collectRows(t, r)
	for _, page := range []int{0, 1, 3} {
		for _, at := range []int{1, 2, len(all) - 1} {
			r.pageRows, r.chunkRows = page, 1
			ctx, cancel := context.WithCancel(context.Background())
			n, failed := 0, false
			for row, err := range r.Rows(ctx) {
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("page %d, cancel after %d: %v, want context.Canceled", page, at, err)
					}
					failed = true
					break
				}
				if row.MerchantTxID != all[n].MerchantTxID || row.Category != all[n].Category {
					t.Fatalf("page %d: row %d is %s %s, want %s %s", page, n, row.Category, row.MerchantTxID, all[n].Category, all[n].MerchantTxID)
				}
				if n++; n == at {
					cancel()
				}
			}
			cancel()
			if !failed && n != len(all) {
				t.Errorf("page %d, cancel after row %d: the rows ended without an error after %d of %d", page, at, n, len(all))
			}
		}
	}
	r.pageRows, r.chunkRows = 0, 0
	if got := collectRows(t, r); len(got) != len(all) {
		t.Fatalf("read again: %d rows, want %d", len(got), len(all))
	}
}
