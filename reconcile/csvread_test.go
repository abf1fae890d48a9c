package reconcile

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

// A CSV is read strictly by DuckDB (in parallel) and, whatever DuckDB
// refuses, by readers in Go (stageCSV), which reads it or names the line.
// A record with more or fewer fields than the header is refused wherever it
// is (issue #15: never padded, never cut short). Each case gives the answer
// the reconcile must reach and whether the file was read in Go.
func TestCSVStrictOrGo(t *testing.T) {
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
		ids        int  // ids in the ledger (each approved at the provider)
		dup        bool // the ledger repeats one id: the exact path
		wantStaged bool // DuckDB could not read the ledger; Go did (stageCSV)
		// the rows pass reads the ledger in Go: a record is not one line
		// (numberByLines)
		stagedRows bool
		// the rows pass's copy reads what src_<n>'s 4 MB buffers refuse:
		// its buffers hold the record (copyBuffer, 8 MiB here)
		copyReads bool
		wantErr   string // the reconcile fails with this in its message
	}{
		{name: "well formed", ledger: lines(10, nil), ids: 10},
		// a record that stops short is refused, near the start or far in
		{name: "short record near the start", ledger: lines(10, map[int]string{2: short(2)}), ids: 10,
			wantErr: "row 4: unusable file: 3 fields where the header has 5"},
		{name: "short first record", ledger: lines(10, map[int]string{0: short(0)}), ids: 10,
			wantErr: "row 2: unusable file: 3 fields where the header has 5"},
		{name: "short first record, with a duplicate", ledger: lines(many, map[int]string{0: short(0), many - 2: full(7)}),
			ids: many, dup: true, wantErr: "row 2: unusable file: 3 fields where the header has 5"},
		{name: "a quote never closed", ledger: lines(10, map[int]string{6: "M000006,\"1.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: "row 8: unusable file: a quoted value is never closed"},
		{name: "text after a closing quote", ledger: lines(10, map[int]string{6: "M000006,1.00,USD,\"re\"fund,2026-11-20\n"}),
			ids: 10, wantErr: "row 8: unusable file: a quoted value is never closed (a \" opens it and no \" ends it), or has text after its closing quote"},
		{name: "a byte that is not UTF-8", ledger: lines(10, map[int]string{6: "M000006,1.00,USD,ref\xffund,2026-11-20\n"}),
			ids: 10, wantErr: `unusable file: the text is not UTF-8`},
		{name: "a bad amount", ledger: lines(10, map[int]string{6: "M000006,1.0x0,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: `row 8, column "amount", value "1.0x0"`},
		// found by Run: DuckDB refuses the byte, Go names it
		{name: "a byte that is not UTF-8 far into the file", ledger: lines(many, map[int]string{many - 3: "M02\xff4997,1.00,USD,refund,2026-11-20\n"}),
			ids: many, wantErr: `row 24999, column "merchant_transaction_id", value "M02?4997": unusable file: not UTF-8 text`},
		// a header and records with different line endings
		{name: "LF header, CRLF records", ledger: header + strings.ReplaceAll(strings.TrimPrefix(lines(10, nil), header), "\n", "\r\n"),
			ids: 10, wantStaged: true},
		{name: "CRLF header, LF records", ledger: strings.Replace(lines(10, nil), "\n", "\r\n", 1), ids: 10, wantStaged: true},
		// later records are read by Run
		{name: "short record far into the file", ledger: lines(many, map[int]string{many - 3: short(many - 3)}), ids: many,
			wantErr: "row 24999: unusable file: 3 fields where the header has 5"},
		{name: "short record, with a duplicate", ledger: lines(many, map[int]string{many - 3: short(many - 3), many - 2: full(7)}),
			ids: many, dup: true, wantErr: "row 24999: unusable file: 3 fields where the header has 5"},
		{name: "line break inside a quoted field", ledger: lines(many, map[int]string{5: "M000005,1.00,USD,\"refund,\nsecond line\",2026-11-20\n"}), ids: many, stagedRows: true},
		{name: "a short record and a quoted line break", ledger: lines(many, map[int]string{5: "M000005,1.00,USD,\"a\nb\",2026-11-20\n", many - 3: short(many - 3)}),
			ids: many, wantErr: "row 25000: unusable file: 3 fields where the header has 5"},
		{name: "record with an extra field", ledger: lines(10, map[int]string{4: "M000004,1,234.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: `row 6: unusable file: 6 fields where the header has 5; a value that contains the delimiter ',' must be in double quotes (e.g. "1,234.56")`},
		{name: "quote never closed", ledger: lines(10, map[int]string{3: "M000003,\"1.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: "row 5: unusable file: a quoted value is never closed"},
		// a quote inside an unquoted value is refused where it is
		{name: "quote inside an unquoted value, then an extra field", ledger: lines(10, map[int]string{2: "M000002,1.00,USD,ref\"und,2026-11-20\n", 6: "M000006,1,234.00,USD,refund,2026-11-20\n"}),
			ids: 10, wantErr: `row 4: unusable file: a " inside a value that is not in quotes`},
		{name: "extra field far into the file", ledger: lines(many, map[int]string{many - 3: "M024997,1,234.00,USD,refund,2026-11-20\n"}),
			ids: many, wantErr: "row 24999: unusable file: 6 fields where the header has 5"},
		// a record longer than DuckDB's CSV buffer (4 MB, sourceCSV) is read in Go;
		// far into the file, the rows pass's copy reads it (larger buffers)
		{name: "a 5 MB record", ledger: lines(10, map[int]string{4: "M000004,1.00,USD," + strings.Repeat("r", 5<<20) + ",2026-11-20\n"}),
			ids: 10, wantStaged: true},
		{name: "a 5 MB record far into the file", ledger: lines(many, map[int]string{many - 3: fmt.Sprintf("M%06d,1.00,USD,%s,2026-11-20\n", many-3, strings.Repeat("r", 5<<20))}),
			ids: many, wantStaged: true, copyReads: true},
		{name: "header only", ledger: header, ids: 1, wantErr: "the ledger has a header but no rows"},
		{name: "blank records only", ledger: header + ",,,,\n , ,,x,\n", ids: 1, wantErr: "the ledger has a header but no rows"},
	}
	ctx := context.Background()
	// Run's single pass (reconcile --json), and its rows pass on two
	// threads, where a CSV is copied in file order before the checks
	// (passCopy): DuckDB refuses the same records there
	for _, mode := range []string{"summary", "rows pass on two threads"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
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
				if mode != "summary" {
					r.opts.Rows, r.passThreads = true, 2
				}
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
				wantStaged := tc.wantStaged && !(tc.copyReads && mode != "summary") || tc.stagedRows && mode != "summary"
				if got := r.sources[0].staged; got != wantStaged {
					t.Errorf("ledger read in Go: %v, want %v", got, wantStaged)
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
}

// TestDuckReadsCSV: the prepared (not run) read_csv finds the header's
// number of columns, or says no — more columns than the header names, an
// unreadable file.
func TestDuckReadsCSV(t *testing.T) {
	ctx := context.Background()
	conn := mustConn(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "l.csv", "a,b,c\n1,2,3\n4,5,6\n")
	for _, c := range []struct {
		path  string
		names []string
		width int
		want  bool
	}{
		{path, []string{"'a'", "'b'", "'c'"}, 3, true},
		{path, []string{"'a'", "'b'"}, 2, false}, // DuckDB finds a third column
		{path, []string{"'a'", "'b'", "'c'"}, 4, false},
		{dir + "/missing.csv", []string{"'a'", "'b'", "'c'"}, 3, false},
	} {
		s := &source{n: 1, path: c.path, delim: ',', width: c.width}
		if got := duckReadsCSV(ctx, conn, s, c.names); got != c.want {
			t.Errorf("%s %v width %d: %t, want %t", c.path, c.names, c.width, got, c.want)
		}
	}
}
