package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// rowsPassRun reconciles ledger and results with Options.Rows, through Run's
// rows pass or (exact) the exact path of before, and returns everything a
// report reads: the summary, the lines, every row, and the bytes of the CSV
// and Parquet exports (without rows: the summary and the lines). threads is
// the rows pass's (Reconciler.passThreads): 1 one DuckDB thread, 2 DuckDB's
// default threads.
type rowsPassOut struct {
	sum        paybatch.Summary
	lines      [2]int64
	rows       []paybatch.ReconRow
	csv, pq    map[string]string
	builtAfter bool   // Run took the exact path
	road       string // the view the rows pass read last (passRoad)
	copies     int    // CSVs the rows pass copied to number them (passCopies)
	err        error
}

func rowsPassRun(t *testing.T, ledger, results string, rows, exact bool, threads int) rowsPassOut {
	t.Helper()
	return rowsPassRunBuffer(t, ledger, results, rows, exact, threads, 0)
}

// rowsPassRunBuffer is rowsPassRun with the rows pass's copies read with
// buffers of copyBuffer bytes (0: sized by the files, as Run does).
func rowsPassRunBuffer(t *testing.T, ledger, results string, rows, exact bool, threads, copyBuffer int) rowsPassOut {
	t.Helper()
	return rowsPassRunFiles(t, []string{ledger}, []string{results}, rows, exact, threads, copyBuffer)
}

// rowsPassRunFiles is rowsPassRunBuffer with any number of ledgers and
// results files, loaded in that order.
func rowsPassRunFiles(t *testing.T, ledgers, results []string, rows, exact bool, threads, copyBuffer int) rowsPassOut {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.noRowsPass = exact
	r.passThreads = threads
	r.copyBuffer = copyBuffer
	for _, l := range ledgers {
		if err := r.LoadLedger(ctx, l, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range results {
		if err := r.LoadResults(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	var out rowsPassOut
	if out.sum, out.err = r.Run(ctx); out.err != nil {
		return out
	}
	out.builtAfter = r.built
	out.road = r.passRoad
	out.copies = r.passCopies
	out.lines[0], out.lines[1] = r.Lines()
	if !rows {
		// Run's single pass (reconcile --json): its summary and lines are
		// what it gives; rows and exports would be the exact path's, built
		// after it (TestRowsPass compares the exact path's directly)
		return out
	}
	out.rows = collectRows(t, r)
	dir := t.TempDir()
	files := func(paths []string, err error) map[string]string {
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			m[filepath.Base(p)] = string(b)
		}
		return m
	}
	out.csv = files(r.ExportCSV(ctx, filepath.Join(dir, "csv"), nil))
	out.pq = files(r.ExportParquet(ctx, filepath.Join(dir, "pq")))
	return out
}

// TestRowsPass: with Options.Rows, Run's one pass (rowsPass: the report
// rows written by the pass that sums the summary) gives what the exact path
// gives — the same summary (also the same as summary.sql's, without Rows),
// lines, rows in the same order, and byte-identical CSV and Parquet exports —
// and hands every case it does not serve (a duplicate id on either side, a
// line with a problem) to the exact path.
func TestRowsPass(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string { return writeFile(t, dir, name, text) }
	// generated: every category of the usual case, ids out of order
	rng := rand.New(rand.NewPCG(6, 42))
	genLedger, genResults, prows := writeGenerated(t, dir, rng, 3000, func(i int) string {
		if i%97 == 0 {
			return fmt.Sprintf("card 4111 1111 1111 %04d declined; ref 12345678901234567890", i)
		}
		return ""
	})
	// the same with every status as usually written (' succeeded ' is off
	// packed_<n>'s road): the pass serves from the fast road
	var prowsRoad [][]string
	for _, p := range prows {
		prowsRoad = append(prowsRoad, append([]string{strings.TrimSpace(p[0])}, p[1:]...))
	}
	genResultsRoad := filepath.Join(dir, "gen_results_road.csv")
	writeCSV(t, genResultsRoad, genResultsHeader, prowsRoad)

	// large: several of DuckDB's 4 MB CSV buffers, read on several threads,
	// so the row numbers must follow the file, not the reading order
	const big = 100_000
	var lb, pb strings.Builder
	lb.WriteString("merchant_transaction_id,amount,currency,description\n")
	pb.WriteString("merchant_transaction_id,amount,currency,status,transaction_id\n")
	perm := rand.New(rand.NewPCG(7, 1)).Perm(big)
	for i, k := range perm {
		fmt.Fprintf(&lb, "ID%07d,%d.%02d,USD,refund of order number %d for the customer\n", k, k%5000, k%100, k)
		if i%50 != 3 {
			amount := k % 5000
			if i%101 == 0 {
				amount++
			}
			fmt.Fprintf(&pb, "ID%07d,%d.%02d,USD,APPROVED,TX%d\n", perm[(i*7)%big], amount, k%100, i)
		}
	}
	// perm[(i*7)%big] pairs other ids with other amounts: a mix of matched
	// (when equal) and mismatched rows; big is not a multiple of 7
	bigLedger, bigResults := write("big_ledger.csv", lb.String()), write("big_results.csv", pb.String())

	cases := []struct {
		name, ledger, results string
		pass                  bool // the rows pass serves it
		refused               bool // a line has a problem: both paths refuse
	}{
		{"generated", genLedger, genResults, true, false},
		{"generated_on_the_road", genLedger, genResultsRoad, true, false},
		{"generated_parquet_ledger", csvToParquet(t, genLedger), genResults, true, false},
		{"blank_lines_and_text", write("l1.csv", "merchant_transaction_id,amount,currency,expected_status\nA1,10.00,USD,\n,,,\nA2, 5.5 ,usd,done\nA3,7,JPY,declined\n\"=cmd|' /C calc'!A0\",1.00,EUR,\n4111 1111 1111 1111,3.00,USD,\n"),
			write("r1.csv", "merchant_transaction_id,amount,currency,status,reason,transaction_id\nA1,10.00,USD,APPROVED,,T1\n,,,,,\nA2,5.50,USD, approved ,\"card 5500-0000-0000-0004 \"\"declined\"\"\",T2\nA4,1,JPY,DECLINED,x,T4\n\"=cmd|' /C calc'!A0\",1.00,EUR,APPROVED,,\n4111 1111 1111 1111,3.00,USD,APPROVED,,5500000000000004\n"),
			true, false},
		{"large", bigLedger, bigResults, true, false},
		{"quoted_newlines_crlf_bom", write("l6.csv", "\ufeffmerchant_transaction_id,amount,currency,description\r\nF1,1.00,USD,\"two\r\nlines\"\r\n\r\nF2,2.00,USD,\"three\nshort\nlines\"\r\nF3,3.00,USD,plain\r\nF4,4.00,USD,\"\"\r\n"),
			write("r6.csv", "merchant_transaction_id,amount,currency,status,reason\nF1,1.00,USD,APPROVED,\"a\nb\"\nF3,3.00,USD,DECLINED,\"x\n\ny\"\nF5,5.00,USD,APPROVED,\"\"\"q\"\"\nz\"\nF2,2.00,USD,APPROVED,\n"),
			true, false},
		{"duplicate_in_ledger", write("l2.csv", "merchant_transaction_id,amount,currency\nB1,1.00,USD\nB1,1.00,USD\nB2,2.00,USD\n"),
			write("r2.csv", "merchant_transaction_id,amount,currency,status\nB1,1.00,USD,APPROVED\nB2,2.00,USD,APPROVED\n"), false, false},
		{"duplicate_at_provider", write("l3.csv", "merchant_transaction_id,amount,currency\nC1,1.00,USD\nC2,2.00,USD\n"),
			write("r3.csv", "merchant_transaction_id,amount,currency,status\nC1,1.00,USD,APPROVED\nC1,1.00,USD,APPROVED\nC2,2.00,USD,APPROVED\n"), false, false},
		{"unmatched_twice", write("l4.csv", "merchant_transaction_id,amount,currency\nD1,1.00,USD\nD1,3.00,USD\nD2,2.00,USD\n"),
			write("r4.csv", "merchant_transaction_id,amount,currency,status\nD2,2.00,USD,APPROVED\nD3,2.00,USD,APPROVED\nD3,2.00,USD,DECLINED\n"), false, false},
		// an unmatched id twice in the second unmatched category only, or
		// with no row of the first (rowsPass reads their rows' range only)
		{"unmatched_twice_in_ledger_missing", write("l10.csv", "merchant_transaction_id,amount,currency\nK1,1.00,USD\nK2,2.00,USD\nK4,4.00,USD\n"),
			write("r10.csv", "merchant_transaction_id,amount,currency,status\nK1,1.00,USD,APPROVED\nK3,3.00,USD,APPROVED\nK5,5.00,USD,APPROVED\nK3,3.00,USD,APPROVED\n"), false, false},
		{"unmatched_twice_none_at_provider", write("l11.csv", "merchant_transaction_id,amount,currency\nL1,1.00,USD\n"),
			write("r11.csv", "merchant_transaction_id,amount,currency,status\nL3,3.00,USD,DECLINED\nL1,1.00,USD,APPROVED\nL3,3.00,USD,APPROVED\n"), false, false},
		{"unmatched_once_each", write("l12.csv", "merchant_transaction_id,amount,currency\nN1,1.00,USD\nN2,2.00,USD\nN4,4.00,USD\n"),
			write("r12.csv", "merchant_transaction_id,amount,currency,status\nN1,1.00,USD,APPROVED\nN3,3.00,USD,APPROVED\nN5,5.00,USD,PROCESSING\n"), true, false},
		// lines off packed_<n>'s road that load: the pass reads the files
		// again through checked_<n> and still serves
		{"off_the_road", write("l7.csv", "merchant_transaction_id,amount,currency,expected_status\nG1,1.00,uSd,done\n G2 ,2.00,USD,\nG3,3.00,USD, done \nG4,4.1234,CLF,\n,,,\nG5,5.00, EUR ,DONE\nG6,6.00,USD,Done\nG7, 7.00,usd,\n"),
			write("r7.csv", "merchant_transaction_id,amount,currency,status,transaction_id,reason\nG1,1.00,USD,APPROVED, T1 ,\nG2,2.00,USD,approved,T2, why \nG3,3.00,USD,  Declined,T3,\nG4,4.1234,CLF,APPROVED,T4,\n,,,,,\nG5,5.00,EUR,aPPROVED,,\nG6,6.00,USD,Approved,T6,\nG7,7.00,USD,APPROVED,T7,\n"),
			true, false},
		{"padded_id_only", write("l8.csv", "merchant_transaction_id,amount,currency\nH1,1.00,USD\nH2\u00a0,2.00,USD\n"),
			write("r8.csv", "merchant_transaction_id,amount,currency,status\nH1,1.00,USD,APPROVED\nH2,2.00,USD,APPROVED\n"), true, false},
		{"blank_and_spellings_on_the_road", write("l9.csv", "merchant_transaction_id,amount,currency,expected_status\nJ1,1.00,usd,Done\n,,,\nJ2,2.5,Usd,DECLINED\nJ3,300,JPY,\n"),
			write("r9.csv", "merchant_transaction_id,amount,currency,status,transaction_id,reason\nJ1,1.00,USD,approved, T1 , card 4111 1111 1111 1111 \n,,,,,\nJ2,2.50,USD,Declined,T2,\nJ3,300,JPY,PROCESSING,,\n"),
			true, false},
		{"bad_amount", write("l5.csv", "merchant_transaction_id,amount,currency\nE1,1.00,USD\nE2,2.005,USD\n"),
			write("r5.csv", "merchant_transaction_id,amount,currency,status\nE1,1.00,USD,APPROVED\n"), false, true},
	}
	// the view each served case's pass reads last: the fast road, or
	// checked_<n> after it when a line is off the road
	roads := map[string]string{
		"generated": "checked", "generated_on_the_road": "packed", "generated_parquet_ledger": "checked",
		"blank_lines_and_text": "checked", "large": "packed", "quoted_newlines_crlf_bom": "packed",
		"off_the_road": "checked", "padded_id_only": "checked", "blank_and_spellings_on_the_road": "packed",
		"unmatched_once_each": "packed",
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exact := rowsPassRun(t, tc.ledger, tc.results, true, true, 0)
			// the pass on one DuckDB thread and on its default threads,
			// whatever the machine's load: the same as the exact path both ways
			for _, threads := range []int{1, 2} {
				t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
					pass := rowsPassRun(t, tc.ledger, tc.results, true, false, threads)
					rowsPassCompare(t, tc.name, pass, exact, tc.pass, tc.refused)
					if tc.pass && pass.road != roads[tc.name] {
						t.Errorf("the pass read %s_<n> last, want %s_<n>", pass.road, roads[tc.name])
					}
				})
			}
			if !tc.refused {
				single := rowsPassRun(t, tc.ledger, tc.results, false, false, 0)
				if !reflect.DeepEqual(exact.sum, single.sum) || exact.lines != single.lines {
					t.Errorf("without Rows: summary %+v, lines %v; exact path %+v, %v", single.sum, single.lines, exact.sum, exact.lines)
				}
			}
		})
	}
}

// rowsPassCompare: pass (Run's rows pass, or the exact path when it does
// not serve) gives what the exact path gives.
func rowsPassCompare(t *testing.T, tcName string, pass, exact rowsPassOut, serves, refused bool) {
	t.Helper()
	if refused {
		if pass.err == nil || exact.err == nil || pass.err.Error() != exact.err.Error() {
			t.Fatalf("errors differ or missing:\npass:  %v\nexact: %v", pass.err, exact.err)
		}
		return
	}
	if pass.err != nil || exact.err != nil {
		t.Fatalf("pass: %v, exact: %v", pass.err, exact.err)
	}
	if pass.builtAfter == serves || !exact.builtAfter {
		t.Fatalf("paths taken: rows pass served = %v, want %v (exact path built: %v)", !pass.builtAfter, serves, exact.builtAfter)
	}
	if !reflect.DeepEqual(pass.sum, exact.sum) {
		t.Errorf("summaries differ:\npass:   %+v\nexact:  %+v", pass.sum, exact.sum)
	}
	if pass.lines != exact.lines {
		t.Errorf("lines: pass %v, exact %v", pass.lines, exact.lines)
	}
	if len(pass.rows) != len(exact.rows) {
		t.Fatalf("%d rows, exact path %d", len(pass.rows), len(exact.rows))
	}
	bad := 0
	for i := range pass.rows {
		if !reflect.DeepEqual(pass.rows[i], exact.rows[i]) && bad < 5 {
			bad++
			t.Errorf("row %d:\npass:  %+v\nexact: %+v", i, pass.rows[i], exact.rows[i])
		}
	}
	for _, kind := range []struct {
		name      string
		got, want map[string]string
	}{{"csv", pass.csv, exact.csv}, {"parquet", pass.pq, exact.pq}} {
		if len(kind.got) != len(kind.want) {
			t.Errorf("%s: files %d, exact path %d", kind.name, len(kind.got), len(kind.want))
		}
		for name, want := range kind.want {
			if kind.got[name] != want {
				t.Errorf("%s export %s differs from the exact path's", kind.name, name)
			}
		}
	}
	if tcName == "blank_lines_and_text" { // and the exports, compared above
		for _, row := range pass.rows {
			if text := fmt.Sprint(row); strings.Contains(text, "5500-0000-0000-0004") ||
				strings.Contains(text, "5500000000000004") || strings.Contains(text, "4111 1111 1111 1111") {
				t.Errorf("card number not masked: %+v", row)
			}
		}
	}
}

// TestRowsPassCopyNumbers: on two threads the rows pass numbers a CSV's
// records by copying the file into a table in file order (passCopy), which
// DuckDB writes on both threads, its buffers read side by side — buffers
// sized by the file (copyBuffer: 8 MiB here, batches of a row group or more
// written as they come) and of 256 KiB (dozens of buffers, each batch
// merged with its neighbours); on one thread by a window over the reader
// (windowView). Both give each record
// its place among the file's records, the header being row 1, which is its
// line: both serve only files whose records are one line each (a blank
// line or a quoted line break sends the file to Go, numberByLines;
// TestRowNumbersAreLines) — across buffers, with quoted values holding
// delimiters and quotes, CRLF line endings and blank records (a record,
// counted) — and every row and export is the same.
func TestRowsPassCopyNumbers(t *testing.T) {
	dir := t.TempDir()
	const n = 150_000 // ≈ 9 MB of ledger: several of DuckDB's CSV buffers
	var lb, pb strings.Builder
	lb.WriteString("merchant_transaction_id,amount,currency,description\r\n")
	pb.WriteString("merchant_transaction_id,amount,currency,status,reason\n")
	ledgerRow := map[string]int{} // id → its record's row number
	resultsRow := map[string]int{}
	lrec, prec := 0, 0 // records written so far
	for i := range n {
		id := fmt.Sprintf("K%07d", i)
		desc := fmt.Sprintf("payment %d of the batch", i)
		switch {
		case i%997 == 0:
			desc = fmt.Sprintf("\"two, lines %d\"", i)
		case i%1009 == 0:
			desc = fmt.Sprintf("\"three, short,, lines %d, quoted \"\"here\"\"\"", i)
		}
		fmt.Fprintf(&lb, "%s,%d.%02d,USD,%s\r\n", id, i%700, i%100, desc)
		ledgerRow[id] = lrec + 2
		lrec++
		if i%4999 == 0 {
			lb.WriteString(",,,\r\n") // a blank record
			lrec++
		}
		if i%13 == 0 {
			continue // missing at the provider: the row names the ledger's line
		}
		reason := ""
		if i%1013 == 0 {
			reason = fmt.Sprintf("\"declined, at %d\"", i)
		}
		amount := i % 700
		if i%101 == 0 {
			amount++
		}
		fmt.Fprintf(&pb, "%s,%d.%02d,USD,APPROVED,%s\n", id, amount, i%100, reason)
		resultsRow[id] = prec + 2
		prec++
	}
	ledger, results := writeFile(t, dir, "ledger.csv", lb.String()), writeFile(t, dir, "results.csv", pb.String())
	window := rowsPassRun(t, ledger, results, true, false, 1)
	copied := rowsPassRun(t, ledger, results, true, false, 2)
	small := rowsPassRunBuffer(t, ledger, results, true, false, 2, 256<<10)
	if window.copies != 0 || copied.copies != 2 || small.copies != 2 {
		t.Fatalf("CSVs copied: %d on one thread, %d and %d on two; want 0 and 2", window.copies, copied.copies, small.copies)
	}
	if small.err != nil || small.builtAfter || !reflect.DeepEqual(small.rows, copied.rows) ||
		!reflect.DeepEqual(small.csv, copied.csv) || !reflect.DeepEqual(small.pq, copied.pq) {
		t.Errorf("copies read with 256 KiB buffers: error %v, exact path %v, rows and exports the same as with the file's buffers: %v",
			small.err, small.builtAfter, reflect.DeepEqual(small.rows, copied.rows) && reflect.DeepEqual(small.csv, copied.csv) && reflect.DeepEqual(small.pq, copied.pq))
	}
	// with DuckDB free to write a table in any order, no copy numbers
	// anything: the window does, on two threads too
	unordered := rowsPassRunWith(t, ledger, results, 2, `SET preserve_insertion_order = false`)
	if unordered.copies != 0 || !reflect.DeepEqual(unordered.rows, window.rows) {
		t.Errorf("preserve_insertion_order off: %d CSVs copied, rows the same as the window's: %v", unordered.copies, reflect.DeepEqual(unordered.rows, window.rows))
	}
	if copied.err != nil || window.err != nil || copied.builtAfter || window.builtAfter {
		t.Fatalf("errors %v, %v; exact path taken: %v, %v", copied.err, window.err, copied.builtAfter, window.builtAfter)
	}
	if !reflect.DeepEqual(copied.sum, window.sum) || copied.lines != window.lines {
		t.Errorf("summary %+v, lines %v; by the window %+v, %v", copied.sum, copied.lines, window.sum, window.lines)
	}
	if !reflect.DeepEqual(copied.rows, window.rows) {
		t.Errorf("rows differ from the window's")
	}
	if !reflect.DeepEqual(copied.csv, window.csv) || !reflect.DeepEqual(copied.pq, window.pq) {
		t.Errorf("exports differ from the window's")
	}
	if len(copied.rows) != n {
		t.Fatalf("%d rows, want %d", len(copied.rows), n)
	}
	bad := 0
	for _, row := range copied.rows {
		want := resultsRow[row.MerchantTxID]
		if row.Category == paybatch.CatMissingAtProvider {
			want = ledgerRow[row.MerchantTxID]
		}
		if row.Source.Row != want && bad < 5 {
			bad++
			t.Errorf("%s (%s): row %d, want %d", row.MerchantTxID, row.Category, row.Source.Row, want)
		}
	}
}

// TestRowsPassCopyCancel: a rows pass on two threads stopped by its context
// at any point (copying the CSVs, the pass, the checks after it) returns
// the context's error and leaves the Reconciler as it was: no copy left
// behind, each CSV's src_<n> the plain view again, and the next Run gives
// the same rows as an uninterrupted one.
func TestRowsPassCopyCancel(t *testing.T) {
	ledger, results := writeEURPair(t, t.TempDir(), "C", 100_000, func(i int) bool { return i%7 == 0 })
	want := rowsPassRun(t, ledger, results, true, false, 2)
	if want.err != nil || want.copies != 2 {
		t.Fatalf("uninterrupted: %v, %d CSVs copied", want.err, want.copies)
	}
	ctx := context.Background()
	r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.passThreads = 2
	if err := r.LoadLedger(ctx, ledger, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadResults(ctx, results, ""); err != nil {
		t.Fatal(err)
	}
	stopped := 0
	for _, after := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond} {
		cctx, cancel := context.WithTimeout(ctx, after)
		_, err := r.Run(cctx)
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("stopped after %v: %v, want the context's error", after, err)
			}
			stopped++
		}
		var left int
		if err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'pass_copy_%'`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Errorf("stopped after %v: %d copies left", after, left)
		}
		for _, s := range r.sources {
			var def string
			err := r.db.QueryRowContext(ctx, `SELECT sql FROM duckdb_views() WHERE view_name = $1`, fmt.Sprintf("src_%d", s.n)).Scan(&def)
			if errors.Is(err, sql.ErrNoRows) && !s.srcView {
				continue // stopped before src_<n> was first created (ensureSrc): nothing to put back
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(def, "pass_copy_") || strings.Contains(def, "row_number") {
				t.Errorf("stopped after %v: src_%d left numbered: %s", after, s.n, def)
			}
		}
		sum, err := r.Run(ctx)
		if err != nil {
			t.Fatalf("run after the one stopped after %v: %v", after, err)
		}
		if r.built || r.passCopies != 2 || !reflect.DeepEqual(sum, want.sum) {
			t.Fatalf("run after the one stopped after %v: exact path %v, %d copies, summary %+v; want %+v", after, r.built, r.passCopies, sum, want.sum)
		}
		if rows := collectRows(t, r); !reflect.DeepEqual(rows, want.rows) {
			t.Fatalf("run after the one stopped after %v: rows differ", after)
		}
	}
	if stopped == 0 {
		t.Errorf("no run was stopped")
	}
}

// rowsPassRunWith is Run's rows pass on threads (Reconciler.passThreads)
// after the statement first has run on the database: its rows and the CSVs
// it copied.
func rowsPassRunWith(t *testing.T, ledger, results string, threads int, first string) rowsPassOut {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.passThreads = threads
	if err := r.LoadLedger(ctx, ledger, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadResults(ctx, results, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.ExecContext(ctx, first); err != nil {
		t.Fatal(err)
	}
	var out rowsPassOut
	if out.sum, out.err = r.Run(ctx); out.err != nil {
		t.Fatal(out.err)
	}
	out.copies = r.passCopies
	out.rows = collectRows(t, r)
	return out
}

// TestCopyBuffer: the copies' buffers hold about 160,000 of the file's
// lines (by its first 256 KiB), in whole MiB, between 8 and 32 MiB.
func TestCopyBuffer(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		line  int // bytes a line, newline included
		lines int
		want  int
	}{
		{43, 100_000, 8 << 20},   // 6.9 MB of lines: at least 8 MiB
		{106, 100_000, 17 << 20}, // 16.96 MB: 17 MiB
		{500, 1_000, 32 << 20},   // 80 MB: at most 32 MiB
		{10, 3, 8 << 20},         // a short file
		{0, 0, 8 << 20},          // empty
	} {
		path := filepath.Join(dir, fmt.Sprintf("f%d.csv", c.line))
		line := strings.Repeat("x", max(c.line-1, 0)) + "\n"
		if err := os.WriteFile(path, []byte(strings.Repeat(line, c.lines)), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := copyBuffer(path); got != c.want {
			t.Errorf("lines of %d bytes: %d, want %d", c.line, got, c.want)
		}
	}
	if got := copyBuffer(filepath.Join(dir, "missing.csv")); got != 8<<20 {
		t.Errorf("a missing file: %d, want %d", got, 8<<20)
	}
}

// TestRowsPassViewColumns: the rows pass's recon_sorted (a view over
// recon_pass, passView) has the columns of the exact path's table
// (rows_sorted.sql), of the same types and in the same order, then the
// pass's key, l_seq and p_seq; and the exact path, run after the pass on
// the same reconciler, replaces the view and its table with its own table.
func TestRowsPassViewColumns(t *testing.T) {
	ctx := context.Background()
	ledger, results := writeEURPair(t, t.TempDir(), "V", 50, func(i int) bool { return i%7 == 0 })
	columns := func(r *Reconciler) []string {
		t.Helper()
		var out []string
		err := r.scan(ctx, `SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = 'recon_sorted' ORDER BY ordinal_position`,
			func(rows *sql.Rows) error {
				var c string
				err := rows.Scan(&c)
				out = append(out, c)
				return err
			})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	open := func(exact bool) *Reconciler {
		r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		r.noRowsPass = exact
		loadRun(t, r, ledger, "", results, false)
		if _, err := r.ensureBuilt(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	pass, exact := open(false), open(true)
	if pass.built || pass.passRoad != "packed" {
		t.Fatalf("the rows pass did not serve: built %v, road %q", pass.built, pass.passRoad)
	}
	got, want := columns(pass), columns(exact)
	if len(got) == 0 || got[0] != "rowid BIGINT" {
		t.Fatalf("the pass's recon_sorted does not start with its rowid: %v", got)
	}
	want = append(want, "key BIGINT", "l_seq BIGINT", "p_seq BIGINT")
	if !reflect.DeepEqual(got[1:], want) {
		t.Errorf("the pass's recon_sorted columns:\n%v\nwant (rows_sorted.sql's, then key, l_seq, p_seq):\n%v", got[1:], want)
	}

	// the exact path after the pass: its table replaces the view and recon_pass
	pass.mu.Lock()
	pass.ranges = nil
	pass.mu.Unlock()
	if _, err := pass.ensureBuilt(ctx); err != nil {
		t.Fatal(err)
	}
	if got := columns(pass); !reflect.DeepEqual(got, want[:len(want)-3]) {
		t.Errorf("after the exact path: %v", got)
	}
	var left int
	if err := pass.db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE table_name = 'recon_pass'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("recon_pass left after the exact path (%d, %v)", left, err)
	}
}

// TestRowsPassColumnsByFile: the rows pass carries a line's expected
// status, status, transaction id and reason only when a file of its side
// has the column (passColumns); with several files per side, some with the
// column and some without, and with no file having it, every row and
// export is the exact path's.
func TestRowsPassColumnsByFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string { return writeFile(t, dir, name, text) }
	l1 := write("l1.csv", "merchant_transaction_id,amount,currency,expected_status\nK1,1.00,USD,done\nK2,2.00,USD,declined\nK3,3.00,EUR,\n")
	l2 := write("l2.csv", "merchant_transaction_id,amount,currency\nK4,4.00,USD\nK5,5.00,GBP\n")
	r1 := write("r1.csv", "merchant_transaction_id,amount,currency,status,reason\nK1,1.00,USD,APPROVED,\nK2,2.00,USD,DECLINED,card 4111 1111 1111 1111 refused\nK6,6.00,USD,APPROVED,late\n")
	r2 := write("r2.csv", "merchant_transaction_id,amount,currency,status,transaction_id\nK3,3.00,EUR,APPROVED,T3\nK4,4.50,USD,APPROVED,T4\nK7,7.00,USD,pending,\n")
	cases := []struct {
		name             string
		ledgers, results []string
		carried          passCarried
	}{
		{"mixed", []string{l1, l2}, []string{r1, r2}, passCarried{true, true, true, true}},
		{"mixed_other_order", []string{l2, l1}, []string{r2, r1}, passCarried{true, true, true, true}},
		{"none", []string{l2}, []string{write("r3.csv", "merchant_transaction_id,amount,currency,status\nK4,4.00,USD,APPROVED\nK8,8.00,USD,DECLINED\n")}, passCarried{false, true, false, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exact := rowsPassRunFiles(t, tc.ledgers, tc.results, true, true, 0, 0)
			for _, threads := range []int{1, 2} {
				pass := rowsPassRunFiles(t, tc.ledgers, tc.results, true, false, threads, 0)
				rowsPassCompare(t, tc.name, pass, exact, true, false)
			}
			r, err := Open(context.Background(), Options{TempDir: t.TempDir(), Rows: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, l := range tc.ledgers {
				if err := r.LoadLedger(context.Background(), l, ""); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range tc.results {
				if err := r.LoadResults(context.Background(), p, ""); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.passColumns(); got != tc.carried {
				t.Errorf("carried %+v, want %+v", got, tc.carried)
			}
		})
	}
}

// TestRowsPassRunTwice: a second Run with Options.Rows (another results
// file loaded after the first) writes recon_pass again under the view, and
// the rows are the second run's.
func TestRowsPassRunTwice(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ledger, results := writeEURPair(t, dir, "W", 40, func(i int) bool { return i%5 == 0 })
	more := writeFile(t, dir, "more.csv", "merchant_transaction_id,amount,currency,status\nW0000000,0.00,EUR,APPROVED\n")
	r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	loadRun(t, r, ledger, "", results, false)
	first := collectRows(t, r)
	if err := r.LoadResults(ctx, more, ""); err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.built {
		t.Fatal("the second Run took the exact path")
	}
	second := collectRows(t, r)
	if len(first) != 40 || len(second) != 40 {
		t.Fatalf("rows: %d then %d, want 40 and 40", len(first), len(second))
	}
	if sum.Categories[paybatch.CatMissingAtProvider].Count != 7 {
		t.Errorf("missing at provider after the second run: %d, want 7", sum.Categories[paybatch.CatMissingAtProvider].Count)
	}
	exact := rowsPassRunFiles(t, []string{ledger}, []string{results, more}, true, true, 0, 0)
	if !reflect.DeepEqual(second, exact.rows) {
		t.Errorf("the second run's rows differ from the exact path's")
	}
}

// TestUnmatchedTwice: the rows pass's check for an unmatched id with more
// than one row reads the unmatched categories' range of recon_sorted only,
// and says no serve when an id is there twice or when the range does not
// hold every unmatched row the summary counted.
func TestUnmatchedTwice(t *testing.T) {
	ctx := context.Background()
	conn := mustConn(t)
	// rows 0-1 missing_at_provider, 2-4 missing_in_ledger, 5-6 matched (the
	// matched ids repeat the unmatched ones: not read)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE recon_sorted AS SELECT * FROM (VALUES
		(4, 'A'), (4, 'B'), (5, 'C'), (5, 'D'), (5, 'E'), (10, 'A'), (10, 'C')) AS v(key, merchant_transaction_id)`); err != nil {
		t.Fatal(err)
	}
	sum := func(miss, missIn int64) paybatch.Summary {
		return paybatch.Summary{Categories: map[paybatch.Category]paybatch.CategoryTotals{
			paybatch.CatMissingAtProvider: {Count: miss}, paybatch.CatMissingInLedger: {Count: missIn}, paybatch.CatMatched: {Count: 2}}}
	}
	ranges := func(miss, missIn int64) []catRange {
		var out []catRange
		next := int64(0)
		for _, c := range []struct {
			cat paybatch.Category
			n   int64
		}{{paybatch.CatMissingAtProvider, miss}, {paybatch.CatMissingInLedger, missIn}, {paybatch.CatMatched, 2}} {
			if c.n > 0 {
				out = append(out, catRange{cat: c.cat, first: next, last: next + c.n - 1})
				next += c.n
			}
		}
		return out
	}
	check := func(name string, s paybatch.Summary, rs []catRange, want bool) {
		t.Helper()
		got, err := unmatchedTwice(ctx, conn, s, rs)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: unmatchedTwice = %v, want %v", name, got, want)
		}
	}
	check("each once", sum(2, 3), ranges(2, 3), false)
	check("none unmatched", paybatch.Summary{Categories: map[paybatch.Category]paybatch.CategoryTotals{paybatch.CatMatched: {Count: 7}}},
		[]catRange{{cat: paybatch.CatMatched, first: 0, last: 6}}, false)
	// a range that misses some of the unmatched rows the summary counted
	// (the table out of its order): not served
	shifted := ranges(2, 3)
	for i := range shifted {
		shifted[i].first++
		shifted[i].last++
	}
	check("range shifted", sum(2, 3), shifted, true)
	if _, err := conn.ExecContext(ctx, `UPDATE recon_sorted SET merchant_transaction_id = 'C' WHERE merchant_transaction_id = 'E' AND key = 5`); err != nil {
		t.Fatal(err)
	}
	check("missing_in_ledger twice", sum(2, 3), ranges(2, 3), true)
	if _, err := conn.ExecContext(ctx, `UPDATE recon_sorted SET merchant_transaction_id = 'E' WHERE rowid = 4; UPDATE recon_sorted SET merchant_transaction_id = 'A' WHERE rowid = 1`); err != nil {
		t.Fatal(err)
	}
	check("missing_at_provider twice", sum(2, 3), ranges(2, 3), true)
}

// TestRowsPassAfterPass: a pass that served drops src_<n> of each CSV it
// numbered (rowsPass); a Run after it, with another file loaded, reads the
// files again right — through the pass off the fast road (checked_<n> over
// the pass's own numbering), or the exact path for a duplicate — on one
// thread and on two.
func TestRowsPassAfterPass(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ledger, results := writeEURPair(t, dir, "V", 40, func(i int) bool { return i%5 == 0 })
	offRoad := writeFile(t, dir, "off.csv", "merchant_transaction_id,amount,currency,status\nV0000000,0.00,EUR, approved \n")
	dup := writeFile(t, dir, "dup.csv", "merchant_transaction_id,amount,currency,status\nV0000001,1.00,EUR,APPROVED\n")
	for _, tc := range []struct {
		name, more string
		built      bool // the second Run takes the exact path
	}{{"off_the_road", offRoad, false}, {"duplicate", dup, true}} {
		for _, threads := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/threads=%d", tc.name, threads), func(t *testing.T) {
				r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: true})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				r.passThreads = threads
				loadRun(t, r, ledger, "", results, false)
				if r.built {
					t.Fatal("the first Run took the exact path")
				}
				collectRows(t, r)
				if err := r.LoadResults(ctx, tc.more, ""); err != nil {
					t.Fatal(err)
				}
				sum, err := r.Run(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if r.built != tc.built {
					t.Fatalf("the second Run took the exact path: %v, want %v", r.built, tc.built)
				}
				if !tc.built && r.passRoad != "checked" {
					t.Errorf("the second pass read %s_<n> last, want checked_<n>", r.passRoad)
				}
				rows := collectRows(t, r)
				exact := rowsPassRunFiles(t, []string{ledger}, []string{results, tc.more}, true, true, 0, 0)
				if !reflect.DeepEqual(sum, exact.sum) {
					t.Errorf("summary %+v, exact path %+v", sum, exact.sum)
				}
				if !reflect.DeepEqual(rows, exact.rows) {
					t.Errorf("the second run's rows differ from the exact path's")
				}
			})
		}
	}
}
