package reconcile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/readers"
)

// convertOne runs one amount through the line check (sql/checked.sql) and
// returns its minor units, or the problem found.
func convertOne(t testing.TB, r *Reconciler, amount, cur string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	conn, err := r.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &source{n: 999, kind: kindLedger}
	cols := make([]string, len(stageRoles))
	for i, role := range stageRoles {
		cols[i] = role + " VARCHAR"
	}
	for _, q := range []string{
		`CREATE OR REPLACE TABLE stage_999 (` + strings.Join(cols, ", ") + `, src_row INTEGER)`,
		`CREATE OR REPLACE VIEW src_999 AS SELECT *, ` + textAmount + ` FROM stage_999`,
		s.sql("checked"),
		s.sql("packed"),
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO stage_999 (merchant_transaction_id, amount, currency, src_row) VALUES ('A', ?, ?, 2)`, amount, cur); err != nil {
		t.Fatal(err)
	}
	var minor *int64
	var problem *string
	if err := conn.QueryRowContext(ctx, `SELECT amount_minor, problem.reason FROM checked_999`).Scan(&minor, &problem); err != nil {
		t.Fatalf("amount %q: %v", amount, err)
	}
	// the fast road (packed_999) takes a line only as checked_999 does
	var good, ok, same bool
	if err := conn.QueryRowContext(ctx, `SELECT p.good, c.ok, p.pack IS NOT DISTINCT FROM c.pack AND p.id = c.id
		FROM packed_999 AS p, checked_999 AS c`).Scan(&good, &ok, &same); err != nil {
		t.Fatalf("amount %q: %v", amount, err)
	}
	if good && !(ok && same) {
		t.Fatalf("amount %q %s: packed_999 takes the line (good), checked_999 ok=%t, same pack and id %t", amount, cur, ok, same)
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
		"", " 12.30 ", "\t1\n", "--1", "1.2.3", "999999999999999", "0.000", "7.00", "12.3400", "1 000", "٣",
		// the short road (12 digits, 3 decimals, read as DECIMAL(18,3)) and its edges
		"999999999999.999", "9999999999999.999", "-999999999999.99", "0000000000001.500", "+0000000000000.001", "1234567890123", "12345678901234",
		"1.234", "1.230", "1.2345", "-0.000", "000000000000000000001.00"} {
		for _, c := range []string{"USD", "JPY", "KWD", "CLF"} {
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

// FuzzCSVLedger feeds arbitrary text after a ledger header through the
// whole CSV path: DuckDB's strict read, readers in Go (stageCSV), and Run's
// single pass or exact path. Whatever the text, the reconcile either
// succeeds, with every ledger id counted once, or fails with an error that
// names the file; it never panics, and never drops a record silently. A
// file reconcile accepts is one readers reads without a field-count error
// (the one input layer decides). Seeds are the shapes DuckDB refuses.
//
// Each input opens a DuckDB, so fuzzing is slow (about 5 inputs a second
// here, and the engine spends most of its time minimising new inputs):
//
//	go test ./reconcile -run XXX -fuzz FuzzCSVLedger -fuzztime 10m
func FuzzCSVLedger(f *testing.F) {
	for _, s := range []string{
		"A,1.00,USD,refund\nB,2.00,EUR,refund\n",
		"A,1.00,USD\nB,2.00,EUR,refund\n",            // short first record
		"A,1.00,USD,refund\r\nB,2.00,EUR,refund\r\n", // header LF, records CRLF
		"A,1.00,USD,\"re\nfund\"\nB,2.00,EUR\n",      // quoted line break and a short record
		"A,1.00,USD\nB,1,234.00,EUR,refund\n",        // short, then an extra field
		"A,\"1.00,USD,refund\nB,2.00,EUR,refund\n",   // quote never closed
		"A,1.00,USD\nB,2.00,EUR,ref\"und\n",          // a bare quote
		"A,1.00,USD\nB,2.00,EUR,ref\xffund\n",        // not UTF-8
		"\n\n,,,\n",
		"A,1.00,USD,refund\nA,1.00,USD,refund\n",
		"A,1.00,USD,ref\"und\nB,2.00,EUR,refund\n", // a bare quote alone
		"A ,1.00,USD\u00a0,refund\n\u3000B,0002.500,EUR,refund\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if strings.ContainsRune(body, 0) {
			t.Skip() // DuckDB and Go disagree on NUL bytes in text; not a CSV
		}
		ctx := context.Background()
		dir := t.TempDir()
		path := writeFile(t, dir, "ledger.csv", "merchant_transaction_id,amount,currency,type\n"+body)
		r, err := Open(ctx, Options{TempDir: dir, MemoryLimit: "256MB"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		err = r.LoadLedger(ctx, path, "")
		var sum paybatch.Summary
		if err == nil {
			sum, err = r.Run(ctx)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "ledger.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		// every ledger line is counted once, as an id of its own or in a duplicate
		var ids int64
		for _, c := range paybatch.Categories {
			ids += sum.Categories[c].Count
		}
		seen := map[string]bool{}
		for _, row := range collectRows(t, r) {
			seen[row.MerchantTxID] = true
		}
		if int64(len(seen)) != ids {
			t.Fatalf("Rows gives %d ids, the summary %d", len(seen), ids)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := readers.OpenTable(bytes.NewReader(data), int64(len(data)), path, readers.TableOptions{})
		if err != nil {
			t.Fatalf("reconcile accepted a file readers refuses: %v", err)
		}
		defer tb.Close()
		for {
			_, _, err := tb.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reconcile accepted a file readers refuses: %v", err)
			}
		}
	})
}
