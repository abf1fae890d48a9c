package reconcile

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

// A CSV is read strictly and in parallel first, and read again with short
// records padded only when that fails (csvFrom). Each case gives the answer
// the reconcile must reach and whether the file had to be padded, so a
// regression either way shows: always padding (4x slower, and a line break
// inside quotes refuses the file) or never padding (a record that stops
// short refuses the file).
func TestCSVStrictThenPadded(t *testing.T) {
	const header = "merchant_transaction_id,amount,currency,type,date\n"
	full := func(i int) string { return fmt.Sprintf("M%06d,1.00,USD,refund,2026-11-20\n", i) }
	short := func(i int) string { return fmt.Sprintf("M%06d,1.00,USD\n", i) } // type and date left off
	const many = 25_000
	lines := func(n int, special map[int]string) string {
		var b strings.Builder
		b.WriteString(header)
		for i := range n {
			if s, ok := special[i]; ok {
				b.WriteString(s)
				continue
			}
			b.WriteString(full(i))
		}
		return b.String()
	}
	cases := []struct {
		name       string
		ledger     string
		ids        int    // ids in the ledger (each approved at the provider)
		dup        bool   // the ledger repeats one id: the exact path
		wantPadded bool   // the ledger had to be read with padding
		wantStaged bool   // DuckDB could not read the ledger; Go did (stageCSV)
		byRun      bool   // found by Run's read of every file, so every CSV is padded
		wantErr    string // the reconcile fails with this in its message
	}{
		{name: "well formed", ledger: lines(10, nil), ids: 10},
		// DuckDB's sniffer reads the first 2,048 lines when the file is
		// loaded: a short record there pads that file alone...
		{name: "short record near the start", ledger: lines(10, map[int]string{2: short(2)}), ids: 10, wantPadded: true},
		// ...except the first, which DuckDB cannot read padded or not: Go
		// reads that file
		{name: "short first record", ledger: lines(10, map[int]string{0: short(0)}), ids: 10, wantStaged: true},
		{name: "short first record, with a duplicate", ledger: lines(many, map[int]string{0: short(0), many - 2: full(7)}),
			ids: many, dup: true, wantStaged: true},
		{name: "short first record, then an extra field", ledger: lines(10, map[int]string{0: short(0), 6: "M000006,1,234.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: "row 8: unusable file: 6 fields where the header has 5"},
		{name: "short first record, then a quote never closed", ledger: lines(10, map[int]string{0: short(0), 6: "M000006,\"1.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: "row 8: unusable file: a quoted value is never closed"},
		{name: "short first record, then text after a closing quote", ledger: lines(10, map[int]string{0: short(0), 6: "M000006,1.00,USD,\"re\"fund,2026-11-20\n"}),
			ids: 10, wantErr: "row 8: unusable file: a quoted value is never closed (a \" opens it and no \" ends it), or has text after its closing quote"},
		{name: "short first record, then a quote inside an unquoted value", ledger: lines(10, map[int]string{0: short(0), 6: "M000006,1.00,USD,ref\"und,2026-11-20\n"}),
			ids: 10, wantErr: `row 8: unusable file: a " inside a value that is not in quotes`},
		{name: "short first record, then a byte that is not UTF-8", ledger: lines(10, map[int]string{0: short(0), 6: "M000006,1.00,USD,ref\xffund,2026-11-20\n"}),
			ids: 10, wantErr: `row 8, column "type", value "ref?und": unusable file: not UTF-8 text`},
		{name: "short first record, then a bad amount", ledger: lines(10, map[int]string{0: short(0), 6: "M000006,1.0x0,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: `row 8, column "amount", value "1.0x0"`},
		// found by Run: DuckDB refuses the byte strictly and padded, Go names it
		{name: "a byte that is not UTF-8 far into the file", ledger: lines(many, map[int]string{many - 3: "M02\xff4997,1.00,USD,refund,2026-11-20\n"}),
			ids: many, wantErr: `row 24999, column "merchant_transaction_id", value "M02?4997": unusable file: not UTF-8 text`},
		// a header and records with different line endings
		{name: "LF header, CRLF records", ledger: header + strings.ReplaceAll(strings.TrimPrefix(lines(10, nil), header), "\n", "\r\n"),
			ids: 10, wantStaged: true},
		{name: "CRLF header, LF records", ledger: strings.Replace(lines(10, nil), "\n", "\r\n", 1), ids: 10, wantStaged: true},
		// later records are read by Run, which cannot tell whose a refusal
		// was and pads every CSV
		{name: "short record far into the file", ledger: lines(many, map[int]string{many - 3: short(many - 3)}), ids: many, wantPadded: true, byRun: true},
		{name: "short record, with a duplicate", ledger: lines(many, map[int]string{many - 3: short(many - 3), many - 2: full(7)}),
			ids: many, dup: true, wantPadded: true, byRun: true},
		{name: "line break inside a quoted field", ledger: lines(many, map[int]string{5: "M000005,1.00,USD,\"refund,\nsecond line\",2026-11-20\n"}), ids: many},
		// DuckDB reads either but not both; Go reads the file
		{name: "a short record and a quoted line break", ledger: lines(many, map[int]string{5: "M000005,1.00,USD,\"a\nb\",2026-11-20\n", many - 3: short(many - 3)}),
			ids: many, wantPadded: false, byRun: true, wantStaged: true},
		{name: "record with an extra field", ledger: lines(10, map[int]string{4: "M000004,1,234.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: `row 6: unusable file: 6 fields where the header has 5; a value that contains the delimiter must be in double quotes (e.g. "1,234.00")`},
		{name: "quote never closed", ledger: lines(10, map[int]string{3: "M000003,\"1.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: "row 5: unusable file: a quoted value is never closed"},
		// DuckDB reads a quote inside an unquoted value as itself; finding
		// the real refusal must look past it
		{name: "quote inside an unquoted value, then an extra field", ledger: lines(10, map[int]string{2: "M000002,1.00,USD,ref\"und,2026-11-20\n", 6: "M000006,1,234.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: "row 8: unusable file: 6 fields where the header has 5"},
		{name: "extra field far into the file", ledger: lines(many, map[int]string{many - 3: "M024997,1,234.00,USD,refund,2026-11-20\n"}),
			ids: many, wantErr: "row 24999: unusable file: 6 fields where the header has 5"},
		// a record longer than DuckDB's CSV buffer (4 MB, sourceCSV) is read in Go
		{name: "a 5 MB record", ledger: lines(10, map[int]string{4: "M000004,1.00,USD," + strings.Repeat("r", 5<<20) + ",2026-11-20\n"}),
			ids: 10, wantStaged: true},
		{name: "a 5 MB record far into the file", ledger: lines(many, map[int]string{many - 3: fmt.Sprintf("M%06d,1.00,USD,%s,2026-11-20\n", many-3, strings.Repeat("r", 5<<20))}),
			ids: many, byRun: true, wantStaged: true},
		{name: "header only", ledger: header, ids: 1, wantErr: "the ledger has a header but no rows"},
		{name: "blank records only", ledger: header + ",,,,\n , ,,x,\n", ids: 1, wantErr: "the ledger has a header but no rows"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var results strings.Builder
			results.WriteString("merchant_transaction_id,amount,currency,status\n")
			for i := range tc.ids {
				if tc.dup && i == many-2 {
					continue // that line of the ledger repeats id 7
				}
				fmt.Fprintf(&results, "M%06d,1.00,USD,APPROVED\n", i)
			}
			r := MustOpen(t, "")
			err := r.LoadLedger(ctx, writeFile(t, dir, "ledger.csv", tc.ledger), "")
			if err == nil {
				err = r.LoadResults(ctx, writeFile(t, dir, "results.csv", results.String()), "")
			}
			var sum paybatch.Summary
			if err == nil {
				sum, err = r.Run(ctx)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "ledger.csv") {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := int64(tc.ids)
			if tc.dup {
				want -= 2 // id 7 is a duplicate; the line that held it is no id of its own
				if got := sum.Categories[paybatch.CatDuplicateInLedger].Count; got != 1 {
					t.Errorf("duplicate_in_ledger %d, want 1", got)
				}
			}
			if got := sum.Categories[paybatch.CatMatched].Count; got != want {
				t.Errorf("matched %d, want %d (%+v)", got, want, sum.Categories)
			}
			if got := r.sources[0].padded; got != tc.wantPadded {
				t.Errorf("ledger read with padding: %v, want %v", got, tc.wantPadded)
			}
			if r.sources[1].padded != tc.byRun {
				t.Errorf("results read with padding: %v, want %v", r.sources[1].padded, tc.byRun)
			}
			if got := r.sources[0].staged; got != tc.wantStaged {
				t.Errorf("ledger read in Go: %v, want %v", got, tc.wantStaged)
			}
			// the rows agree, with the row number of each line
			rows := collectRows(t, r)
			matched := 0
			for _, row := range rows {
				if row.Category == paybatch.CatMatched {
					matched++
				}
			}
			if int64(matched) != want {
				t.Errorf("Rows: %d matched, want %d", matched, want)
			}
		})
	}
}
