package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/paybatch/paybatch"
)

// convertOne runs one amount through the stage check (sql/stage_checked.sql)
// and returns its minor units, or the problem found.
func convertOne(t testing.TB, r *Reconciler, amount, cur string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	conn, err := r.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, query("stage_reset")); err != nil {
		t.Fatal(err)
	}
	if err := setStageVars(ctx, conn, kindLedger, 2, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO stage (merchant_transaction_id, amount, currency) VALUES ('A', ?, ?)`, amount, cur); err != nil {
		t.Fatal(err)
	}
	if _, err := r.addCurrencies(ctx, conn, []string{cur}); err != nil {
		t.Fatal(err)
	}
	var minor *int64
	var problem *string
	if err := conn.QueryRowContext(ctx, `SELECT amount_minor, problem.reason FROM stage_checked`).Scan(&minor, &problem); err != nil {
		t.Fatalf("amount %q: %v", amount, err)
	}
	if problem != nil {
		return 0, *problem
	}
	if minor == nil {
		t.Fatalf("amount %q: neither a value nor a problem", amount)
	}
	return *minor, ""
}

// FuzzAmount checks the SQL conversion against paybatch.ParseSignedMoney:
// whatever SQL accepts, Go accepts with the same minor units. SQL may refuse
// more (amounts of 10^15 minor units and up, texts longer than 15
// characters such as long runs of leading or trailing zeros, whitespace
// other than space/tab/CR/LF), never less.
func FuzzAmount(f *testing.F) {
	for _, s := range []string{"10.50", "10.5", "10.005", "-0.01", "+3", ".5", "5.", "007.10", "1e3", "1,000.00",
		"", " 12.30 ", "\t1\n", "--1", "1.2.3", "999999999999999", "0.000", "7.00", "12.3400", "1 000", "٣"} {
		for _, c := range []string{"USD", "JPY", "KWD"} {
			f.Add(s, c)
		}
	}
	r := MustOpen(f, "")
	f.Fuzz(func(t *testing.T, amount, cur string) {
		c, err := paybatch.ParseCurrency(cur)
		if err != nil || c.Code() != cur || strings.ContainsRune(amount, 0) || !utf8.ValidString(amount) {
			// files reach the stage as valid UTF-8 text (DuckDB refuses anything else)
			t.Skip()
		}
		minor, problem := convertOne(t, r, amount, cur)
		want, gerr := paybatch.ParseSignedMoney(amount, c)
		switch {
		case problem == "" && gerr != nil:
			if strings.TrimSpace(amount) == "" {
				return // blank amount on an otherwise blank line is not data
			}
			t.Fatalf("SQL accepted %q %s as %d; Go refuses: %v", amount, cur, minor, gerr)
		case problem == "" && minor != want.Minor:
			t.Fatalf("%q %s: SQL %d, Go %d", amount, cur, minor, want.Minor)
		case problem != "" && gerr == nil:
			abs := want.Minor
			if abs < 0 {
				abs = -abs
			}
			trimmed := strings.TrimSpace(amount)
			if abs < 1e15 && len(trimmed) <= 15 && strings.Trim(amount, " \t\r\n") == trimmed {
				t.Fatalf("SQL refused %q %s (%s); Go accepts %d", amount, cur, problem, want.Minor)
			}
		case problem != "" && !errors.Is(gerr, paybatch.ErrBadAmount) && !errors.Is(gerr, paybatch.ErrBadCurrency):
			t.Fatalf("unexpected Go error %v", gerr)
		}
	})
}
