package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

// Parquet amounts that are DECIMAL(w<=18) or integers are converted without
// text (load.go typedAmount); the rules must be those of the text path:
// exact, excess precision refused with row and value, never rounded.
func TestParquetTypedAmounts(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cases := []struct {
		name   string
		amount string // SQL expression for the amount column
		ccy    string
		want   string // ledger total, or "" when refused
		errHas string // in the error when refused
		sentry error
	}{
		{"decimal scale 2 USD", `10.50::DECIMAL(18,2)`, "USD", "10.50", "", nil},
		{"decimal scale 4 trailing zeros", `10.5000::DECIMAL(18,4)`, "USD", "10.50", "", nil},
		{"decimal scale 4 excess precision", `10.5050::DECIMAL(18,4)`, "USD", "", `row 2, column "Amount", value "10.5050"`, paybatch.ErrBadAmount},
		{"decimal JPY whole", `7.00::DECIMAL(9,2)`, "JPY", "7", "", nil},
		{"decimal KWD scale 1", `1.5::DECIMAL(4,1)`, "KWD", "1.500", "", nil},
		{"integer major units", `12::INTEGER`, "USD", "12.00", "", nil},
		{"bigint too large", `1000000000000000::BIGINT`, "USD", "", `row 2, column "Amount", value "1000000000000000"`, paybatch.ErrBadAmount},
		{"negative decimal", `-3.25::DECIMAL(18,2)`, "EUR", "-3.25", "", nil},
		{"wide decimal takes the text path", `10.50::DECIMAL(38,2)`, "USD", "10.50", "", nil},
		{"wide decimal excess precision", `10.505::DECIMAL(38,3)`, "USD", "", `value "10.505"`, paybatch.ErrBadAmount},
		{"null amount", `NULL::DECIMAL(18,2)`, "USD", "", `column "Amount"`, paybatch.ErrBadAmount},
		{"unknown currency", `1.00::DECIMAL(18,2)`, "XYZ", "", `row 2, column "Ccy", value "XYZ"`, paybatch.ErrBadCurrency},
	}
	ctx := context.Background()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".parquet")
			// row 1 is good, row 2 is the case (Parquet rows count from 1)
			q := `COPY (SELECT * FROM (VALUES ('OK` + string(rune('a'+i)) + `', 1.00::DECIMAL(18,2)::` + typeOf(tc.amount) + `, 'USD'),
				('X', ` + tc.amount + `, '` + tc.ccy + `'))
				AS t("Merchant Txn ID", "Amount", "Ccy")) TO ? (FORMAT parquet)`
			if _, err := db.Exec(q, path); err != nil {
				t.Fatal(err)
			}
			r := MustOpen(t, "")
			err := r.LoadLedger(ctx, path, "")
			if err == nil {
				_, err = r.Run(ctx) // the lines are read here
			}
			if err == nil {
				_, err = r.ensureBuilt(ctx) // and moved into the ledger table here
			}
			if tc.want == "" {
				if err == nil || !errors.Is(err, tc.sentry) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("want %v with %q, got %v", tc.sentry, tc.errHas, err)
				}
				var n int
				if err := r.db.QueryRow(`SELECT count(*) FROM ledger`).Scan(&n); err != nil || n != 0 {
					t.Fatalf("refused file left %d ledger rows (%v)", n, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var minor int64
			if err := r.db.QueryRow(`SELECT amount_minor FROM ledger WHERE merchant_transaction_id = 'X'`).Scan(&minor); err != nil {
				t.Fatal(err)
			}
			cur := paybatch.MustCurrency(tc.ccy)
			if got := (paybatch.Money{Currency: cur, Minor: minor}).String(); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("amount %s: got %s (%d minor), want %s", tc.amount, got, minor, tc.want)
			}
		})
	}
}

// typeOf is the SQL type after "::" in an amount expression (so the good row
// has the same column type as the case).
func typeOf(expr string) string {
	i := strings.LastIndex(expr, "::")
	return expr[i+2:]
}
