package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// sql/categorize.sql categorises most ids from a join and only ids with a
// repeated hash through the per-id GROUP BY. This checks the split against
// the plain GROUP BY of every line (testdata/categorize_groupby.sql, the
// previous formulation) on inputs dense with duplicates on both sides:
// recon must be identical row for row.
func TestCategorizeSplitMatchesGroupBy(t *testing.T) {
	ref, err := os.ReadFile("testdata/categorize_groupby.sql")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			dir := t.TempDir()
			curs := []string{"USD", "EUR", "JPY"}
			statuses := []string{"APPROVED", "APPROVED", "APPROVED", "DECLINED", "PROCESSING", "CANCELLED"}
			var l, p strings.Builder
			l.WriteString("merchant_transaction_id,amount,currency,expected_status\n")
			p.WriteString("merchant_transaction_id,amount,currency,status\n")
			for range 3000 {
				fmt.Fprintf(&l, "M%d,%d,%s,%s\n", rng.IntN(2000), rng.IntN(5)+1, curs[rng.IntN(3)],
					[]string{"", "", "done", "declined"}[rng.IntN(4)])
				fmt.Fprintf(&p, "M%d,%d,%s,%s\n", rng.IntN(2000), rng.IntN(5)+1, curs[rng.IntN(3)], statuses[rng.IntN(len(statuses))])
			}
			r := MustOpen(t, "1")
			if err := r.LoadLedger(ctx, writeFile(t, dir, "l.csv", l.String()), ""); err != nil {
				t.Fatal(err)
			}
			if err := r.LoadResults(ctx, writeFile(t, dir, "p.csv", p.String()), ""); err != nil {
				t.Fatal(err)
			}
			sum, err := r.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Categories["duplicate_in_ledger"].Count == 0 || sum.Categories["duplicate_at_provider"].Count == 0 ||
				sum.Categories["matched"].Count == 0 {
				t.Fatalf("inputs too thin to test the split: %+v", sum.Categories)
			}
			if _, err := r.db.ExecContext(ctx, string(ref)); err != nil {
				t.Fatal(err)
			}
			var n, diff int
			if err := r.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM recon),
				(SELECT count(*) FROM (SELECT * EXCLUDE (special) FROM recon EXCEPT ALL FROM recon_ref))
				+ (SELECT count(*) FROM (FROM recon_ref EXCEPT ALL SELECT * EXCLUDE (special) FROM recon))`).Scan(&n, &diff); err != nil {
				t.Fatal(err)
			}
			if diff != 0 || n == 0 {
				t.Fatalf("split categorisation differs from the GROUP BY in %d of %d rows", diff, n)
			}
			// recon_rows numbers the lines of special ids only: every other
			// id has at most one line per side and no rejected line
			var wrong, special int
			if err := r.db.QueryRowContext(ctx, `WITH lines AS (
					SELECT merchant_transaction_id AS id, 'l' AS side, false AS rejected FROM ledger
					UNION ALL
					SELECT merchant_transaction_id, 'p', class = 'rejected' FROM provider WHERE merchant_transaction_id IS NOT NULL),
				per_id AS (
					SELECT id, count(*) FILTER (WHERE side = 'l') > 1 OR count(*) FILTER (WHERE side = 'p') > 1
						OR bool_or(rejected) AS several
					FROM lines GROUP BY id)
				SELECT count(*) FILTER (WHERE several AND NOT r.special), count(*) FILTER (WHERE several)
				FROM recon AS r JOIN per_id ON per_id.id = r.merchant_transaction_id`).Scan(&wrong, &special); err != nil {
				t.Fatal(err)
			}
			if wrong != 0 || special == 0 {
				t.Fatalf("%d ids with several lines on a side are not special (of %d)", wrong, special)
			}
		})
	}
}

// TestCheckedSQLSkipsStatusLookups: a ledger without an expected-status
// column is checked without the status lookups (checkedSQL), any other file
// with them; both forms are valid SQL that reconciles (the other tests).
func TestCheckedSQLSkipsStatusLookups(t *testing.T) {
	for _, c := range []struct {
		kind   fileKind
		roles  []string
		lookup bool
	}{
		{kindLedger, []string{roleID, roleAmount, roleCurrency}, false},
		{kindLedger, []string{roleID, roleAmount, roleCurrency, roleExpectedStatus}, true},
		{kindResults, []string{roleID, roleAmount, roleCurrency, roleStatus}, true},
	} {
		hm := headerMap{original: map[string]string{}}
		for _, r := range c.roles {
			hm.original[r] = r
		}
		s := &source{n: 1, kind: c.kind, hm: hm}
		q := s.sql("checked")
		if got := strings.Contains(q, "status_lookup"); got != c.lookup {
			t.Errorf("%s %v: status lookups %v, want %v", c.kind, c.roles, got, c.lookup)
		}
		if strings.Contains(q, "/*status{*/") || strings.Contains(q, "/*else*/") || strings.Contains(q, "/*}status*/") {
			t.Errorf("%s %v: block markers left in the SQL", c.kind, c.roles)
		}
	}
}
