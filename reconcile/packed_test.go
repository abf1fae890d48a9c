package reconcile

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/readers"
)

// TestPackedMatchesChecked holds packed_<n> (Run's fast road, sql/checked.sql)
// to checked_<n>: every line packed_<n> calls good is ok in checked_<n> with
// the same id and pack — or has an id to trim (padded_id), which packed_<n>
// gives as written and Run's pass sends to checked_<n> after the join — and
// both agree on which lines are blank. Lines of
// every shape — short and long text amounts, signs, leading and trailing
// zeros, spaces, too many decimals, typed amounts of every scale, currencies
// exact, in lower case, padded, unknown or missing, statuses of both sides,
// ids with spaces — in a ledger and a results file; some of each road.
func TestPackedMatchesChecked(t *testing.T) {
	ctx := context.Background()
	conn := mustConn(t)
	amounts := []string{"10.50", "10.5", "10.005", "-0.01", "+3", ".5", "5.", "007.10", "1e3", "1,000.00", "",
		" 12.30 ", "\t1\n", "12.3400", "0.000", "7.00", "7.10", "999999999999.999", "9999999999999.999",
		"-999999999999.99", "0000000000001.500", "1234567890123", "1.234", "1.230", "1.2345", "-0.000", "12\u00a0"}
	currencies := []string{"USD", "JPY", "KWD", "CLF", "usd", " EUR", "XXX", "", "Jpy", "uSd", "GBP\u00a0", "Kwd"}
	ids := []string{"A", " B", "C ", "", "\u00a0D", "é", "E\u3000", " ", "\u00a0", "F\tG", "\u2028H", "I\u0085"}
	type typed struct {
		v       string // the unscaled integer, or NULL
		frac    int
		present bool
	}
	typedAmounts := []typed{{"1050", 2, true}, {"105", 1, true}, {"7", 0, true}, {"10005", 3, true}, {"700", 2, true},
		{"-1", 2, true}, {"NULL", 2, false}, {"NULL", 2, true}, {"999999999999", 2, true}, {"1000000000000", 2, true},
		{"123456789", 6, true}, {"120000000", 6, true}, {"5", 9, true}, {"-99999999999", 0, true}}
	cols := make([]string, len(stageRoles))
	for i, role := range stageRoles {
		cols[i] = role + " VARCHAR"
	}
	for n, kind := range []fileKind{kindLedger, kindResults, kindLedger, kindResults} {
		n += 990
		isTyped := n >= 992
		s := &source{n: n, kind: kind}
		if kind == kindLedger {
			s.hm.original = map[string]string{roleExpectedStatus: "expected_status"}
		}
		src := fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT *, %s FROM stage_%d`, n, textAmount, n)
		if isTyped {
			src = fmt.Sprintf(`CREATE OR REPLACE VIEW src_%d AS SELECT * EXCLUDE (v, frac, present), NULL::VARCHAR AS amount_shown,
				CASE WHEN present THEN v END AS amount_v, frac AS amount_frac, present AS amount_present FROM stage_%d`, n, n)
		}
		stage := `CREATE OR REPLACE TABLE stage_%d (` + strings.Join(cols, ", ") + `, src_row INTEGER`
		if isTyped {
			stage += `, v BIGINT, frac INTEGER, present BOOLEAN`
		}
		for _, q := range []string{fmt.Sprintf(stage+`)`, n), src, s.sql("checked"), s.sql("packed")} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		statuses := []string{"", "APPROVED", "declined", " Pending ", "maybe", "done", "NOT_DONE", "aPPROVED", "Declined", "Not_done", "failed\t"}
		row := 2
		insert := func(id, amount, cur, status string, ty typed) {
			t.Helper()
			st, exp := any(nil), any(nil)
			if kind == kindResults {
				st = nullable(status)
			} else {
				exp = nullable(status)
			}
			q := fmt.Sprintf(`INSERT INTO stage_%d (merchant_transaction_id, amount, currency, status, expected_status, src_row) VALUES (?, ?, ?, ?, ?, ?)`, n)
			args := []any{nullable(id), nullable(amount), nullable(cur), st, exp, row}
			if isTyped {
				q = fmt.Sprintf(`INSERT INTO stage_%d (merchant_transaction_id, amount, currency, status, expected_status, src_row, v, frac, present)
					VALUES (?, NULL, ?, ?, ?, ?, %s, %d, %t)`, n, ty.v, ty.frac, ty.present)
				args = []any{nullable(id), nullable(cur), st, exp, row}
			}
			if _, err := conn.ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
			row++
		}
		for i, cur := range currencies {
			for j, id := range ids {
				status := statuses[(i+j)%len(statuses)]
				if isTyped {
					for _, ty := range typedAmounts {
						insert(id, "", cur, status, ty)
					}
					continue
				}
				for _, a := range amounts {
					insert(id, a, cur, status, typed{})
				}
			}
		}
		insert("", "", "", "", typed{v: "NULL"}) // blank
		// padded: the id needs trimming; the pass sends such a line to
		// checked_<n> whatever packed_<n> says of it
		var lines, good, goodOnly, mismatch, badOK, padded, paddedTrimmed int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*),
				count(*) FILTER (WHERE p.good),
				count(*) FILTER (WHERE p.good AND NOT c.ok AND NOT padded_id(p.id)),
				count(*) FILTER (WHERE (p.good AND NOT padded_id(p.id) AND (c.id IS DISTINCT FROM p.id OR c.pack IS DISTINCT FROM p.pack))
					OR (p.blank AND NOT c.blank) OR p.blank IS NULL OR (p.good IS NULL)),
				count(*) FILTER (WHERE NOT p.good AND c.ok),
				count(*) FILTER (WHERE p.good AND padded_id(p.id)),
				count(*) FILTER (WHERE c.ok AND padded_id(c.id))
			FROM packed_%[1]d AS p JOIN checked_%[1]d AS c USING (src_row)`, n)).Scan(&lines, &good, &goodOnly, &mismatch, &badOK, &padded, &paddedTrimmed); err != nil {
			t.Fatal(err)
		}
		t.Logf("load %d (%s, typed %t): %d lines, %d on the fast road (%d with an id to trim), %d ok off it", n, kind, isTyped, lines, good, padded, badOK)
		if lines != row-2 || goodOnly != 0 || mismatch != 0 || good == 0 || badOK == 0 || padded == 0 || paddedTrimmed != 0 {
			t.Errorf("load %d: %d lines of %d; %d good but not ok; %d differ; %d good, %d ok off the road; %d good with an id to trim, %d trimmed ids still to trim",
				n, lines, row-2, goodOnly, mismatch, good, badOK, padded, paddedTrimmed)
		}
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestRunOffTheFastRoad: lines packed_<n> does not take (a padded amount, 13
// digits, 4 decimals, a currency of 4 decimals, a padded or oddly cased
// currency or status) send the single pass to checked_<n>, which
// reconciles them exactly.
func TestRunOffTheFastRoad(t *testing.T) {
	dir := t.TempDir()
	ledger := writeFile(t, dir, "ledger.csv", "merchant_transaction_id,amount,currency\n"+
		"A,10.50,USD\nB, 7.00 ,usd\nC,0000000000001.500,KWD\nD,1.2345,CLF\nE,12.3400,EUR\nF,3,JPY\nG,5.00, eur\nH,6.00,uSd\n")
	results := writeFile(t, dir, "results.csv", "merchant_transaction_id,amount,currency,status\n"+
		"A,10.5,USD,APPROVED\nB,7,USD,APPROVED\nC,1.5,KWD,APPROVED\nD,1.2345,CLF,APPROVED\nE,12.34,EUR,APPROVED\nF,3.00,JPY,APPROVED\n"+
		"G,5.00,Eur, approved \nH,6.00,USD,aPPROVED\n")
	_, sum := runFiles(t, ledger, results)
	matched := sum.Categories["matched"]
	if matched.Count != 8 {
		t.Fatalf("matched %d of 8: %+v", matched.Count, sum.Categories)
	}
	want := map[string]string{"USD": "23.50", "KWD": "1.500", "CLF": "1.2345", "EUR": "17.34", "JPY": "3"}
	for code, amount := range want {
		if got := sum.LedgerTotals[code].String(); got != amount {
			t.Errorf("ledger total %s: %s, want %s", code, got, amount)
		}
	}
}

// TestRunBlankLines: a line with nothing at all stays on the fast road
// (packed_<n>'s blank); a line blank only once trimmed (spaces, a no-break
// space) is not blank there, so the pass goes to checked_<n>, which calls
// it blank. Either way the line is counted as a record of the file and
// nothing else: the same summary and line counts as without it.
func TestRunBlankLines(t *testing.T) {
	for _, c := range []struct{ name, line string }{
		{"empty", ",,\n"},
		{"spaces", " , \u00a0 ,\t\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ledger := writeFile(t, dir, "ledger.csv", "merchant_transaction_id,amount,currency\nA,10.50,USD\n"+c.line+"B,7.00,EUR\n")
			results := writeFile(t, dir, "results.csv", "merchant_transaction_id,amount,currency,status\nA,10.50,USD,APPROVED\nB,7.00,EUR,APPROVED\n")
			r, sum := runFiles(t, ledger, results)
			if n := sum.Categories["matched"].Count; n != 2 || sumCount(sum) != 2 {
				t.Fatalf("matched %d, %d ids in all: %+v", n, sumCount(sum), sum.Categories)
			}
			if r.ledgerLines != 2 || r.providerLines != 2 {
				t.Errorf("lines read: ledger %d, provider %d; want 2 and 2 (a blank line is not a line)", r.ledgerLines, r.providerLines)
			}
			if got := sum.LedgerTotals["USD"].String(); got != "10.50" {
				t.Errorf("ledger total USD %s, want 10.50", got)
			}
		})
	}
}

// TestRunPaddedIDs: Run's single pass joins the ids as written and sends a
// joined id that needs trimming to checked_<n> (sql/summary.sql, padded_id).
// Files whose ids are padded — on one side, on both, into duplicates of
// other ids, with every kind of space — reconcile exactly as the same files
// with their ids trimmed first (readers.TrimID), in CSV and through Rows.
func TestRunPaddedIDs(t *testing.T) {
	cases := []struct {
		name            string
		ledger, results []string // ids, one line each
	}{
		{"one side", []string{"A\u00a0", "B", "C"}, []string{"A", "B", "C"}},
		{"other side", []string{"A", "B", "C"}, []string{"A", " B", "C\t"}},
		{"both alike", []string{"A ", "B", "\u3000C"}, []string{"A ", "B", "\u3000C"}},
		{"both unlike", []string{"A ", "B\u2028", "C"}, []string{"\u00a0A", "B", "C\u0085"}},
		{"duplicate once trimmed", []string{"A", "A ", "B"}, []string{"A", "A ", "B"}},
		{"duplicate unmatched", []string{"A", "\u00a0A", "B"}, []string{"B", "C"}},
		{"inner spaces only", []string{"A B", "B\u00a0C", "D"}, []string{"A B", "B\u00a0C", "D"}},
		{"ends not spaces", []string{"A\u200b", "·B", "C"}, []string{"A\u200b", "·B", "C"}},
	}
	write := func(t *testing.T, dir, name string, ids []string, results bool) string {
		var b strings.Builder
		if results {
			b.WriteString("merchant_transaction_id,amount,currency,status\n")
		} else {
			b.WriteString("merchant_transaction_id,amount,currency\n")
		}
		for i, id := range ids {
			fmt.Fprintf(&b, "\"%s\",%d.%02d,USD", strings.ReplaceAll(id, `"`, `""`), 10+i, i)
			if results {
				b.WriteString(",APPROVED")
			}
			b.WriteString("\n")
		}
		return writeFile(t, dir, name, b.String())
	}
	run := func(t *testing.T, ledger, results string) (paybatch.Summary, []paybatch.ReconRow) {
		t.Helper()
		r, sum := runFiles(t, ledger, results)
		return sum, collectRows(t, r)
	}
	trim := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = readers.TrimID(id)
		}
		return out
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			sum, rows := run(t, write(t, dir, "ledger.csv", c.ledger, false), write(t, dir, "results.csv", c.results, true))
			wantSum, wantRows := run(t, write(t, dir, "ledger-trimmed.csv", trim(c.ledger), false),
				write(t, dir, "results-trimmed.csv", trim(c.results), true))
			if got, want := fmt.Sprintf("%+v", sum.Categories), fmt.Sprintf("%+v", wantSum.Categories); got != want {
				t.Errorf("categories\n got %s\nwant %s", got, want)
			}
			if got, want := fmt.Sprint(sum.LedgerTotals, sum.ProviderTotals, sum.MatchRate), fmt.Sprint(wantSum.LedgerTotals, wantSum.ProviderTotals, wantSum.MatchRate); got != want {
				t.Errorf("totals\n got %s\nwant %s", got, want)
			}
			if len(rows) != len(wantRows) {
				t.Fatalf("%d rows, want %d", len(rows), len(wantRows))
			}
			for i := range rows {
				if rows[i].MerchantTxID != wantRows[i].MerchantTxID || rows[i].Category != wantRows[i].Category {
					t.Errorf("row %d: %q %s, want %q %s", i, rows[i].MerchantTxID, rows[i].Category, wantRows[i].MerchantTxID, wantRows[i].Category)
				}
			}
		})
	}
}
