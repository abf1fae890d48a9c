package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/readers"
)

// readerRows numbers the records of a CSV as readers does (the line where
// each record starts, the header line 1): id (the first field) → row.
func readerRows(t *testing.T, path string) map[string]int {
	t.Helper()
	f, size, err := openInput(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tb, err := readers.OpenTable(f, size, path, readers.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	m := map[string]int{}
	for {
		row, cells, err := tb.Next()
		if err != nil {
			break
		}
		m[strings.TrimSpace(cells[0].Text)] = row
	}
	return m
}

// lineBreakFiles writes a ledger and a results file, each with blank lines
// and quoted fields holding line breaks (nl: "\n" or "\r\n") before rows of
// every category; results has a bad amount on id badID when bad.
func lineBreakFiles(t *testing.T, nl string, bad bool) (ledger, results string) {
	dir := t.TempDir()
	var lb, pb strings.Builder
	lb.WriteString("merchant_transaction_id,amount,currency,note" + nl)
	pb.WriteString("merchant_transaction_id,amount,currency,status,reason" + nl)
	for i := range 60 {
		id := fmt.Sprintf("L%03d", i)
		note := "plain"
		if i%4 == 1 {
			note = `"two` + nl + `lines"`
		}
		if i%5 == 2 {
			note = `"three` + nl + nl + `lines, ""quoted"""`
		}
		fmt.Fprintf(&lb, "%s,%d.00,EUR,%s%s", id, i+1, note, nl)
		if i%7 == 3 {
			lb.WriteString(nl) // a blank line
		}
		amount, status := i+1, "APPROVED"
		switch i % 6 {
		case 0: // missing at the provider
			continue
		case 1:
			amount++ // amount mismatch
		case 2:
			status = "DECLINED"
		}
		reason := ""
		if i%3 == 0 {
			reason = `"declined` + nl + `at the bank"`
		}
		if i%4 == 2 {
			pb.WriteString(nl + nl) // blank lines
		}
		a := fmt.Sprintf("%d.00", amount)
		if bad && i == 40 {
			a = "x.00"
		}
		fmt.Fprintf(&pb, "%s,%s,EUR,%s,%s%s", id, a, status, reason, nl)
	}
	for i := range 5 { // missing in the ledger
		fmt.Fprintf(&pb, "P%03d,%d.00,EUR,APPROVED,\"late%sreply\"%s", i, i+1, nl, nl)
	}
	return writeFile(t, dir, "ledger.csv", lb.String()), writeFile(t, dir, "results.csv", pb.String())
}

// TestRowNumbersAreLines: the row number of a CSV record is the line where
// it starts (header = 1), as readers numbers it, though blank lines and
// quoted line breaks (LF and CRLF) come before it — on every path: the rows
// pass on one thread (the window) and on two (the copies), the exact path,
// the exports, and the problems of a bad line.
func TestRowNumbersAreLines(t *testing.T) {
	for _, nl := range []string{"\n", "\r\n"} {
		t.Run(fmt.Sprintf("%q", nl), func(t *testing.T) {
			ledger, results := lineBreakFiles(t, nl, false)
			lrows, prows := readerRows(t, ledger), readerRows(t, results)
			if lrows["L059"] == 60+1 {
				t.Fatal("the ledger's records are one line each: the test tests nothing")
			}
			cats := map[paybatch.Category]bool{}
			var ref rowsPassOut
			for _, c := range []struct {
				name    string
				exact   bool
				threads int
			}{{"window", false, 1}, {"copies", false, 2}, {"exact", true, 1}} {
				out := rowsPassRun(t, ledger, results, true, c.exact, c.threads)
				if out.err != nil {
					t.Fatalf("%s: %v", c.name, out.err)
				}
				bad := 0
				for _, row := range out.rows {
					cats[row.Category] = true
					want := prows[row.MerchantTxID]
					if row.Category == paybatch.CatMissingAtProvider {
						want = lrows[row.MerchantTxID]
					}
					if row.Source.Row != want && bad < 5 {
						bad++
						t.Errorf("%s: %s (%s): row %d, want line %d", c.name, row.MerchantTxID, row.Category, row.Source.Row, want)
					}
				}
				if c.name == "window" {
					ref = out
					continue
				}
				if !reflect.DeepEqual(out.csv, ref.csv) || !reflect.DeepEqual(out.pq, ref.pq) {
					t.Errorf("%s: exports differ from the window's", c.name)
				}
			}
			if len(cats) < 5 {
				t.Errorf("categories %v: want every one", cats)
			}
			// the exports name the lines too
			if !strings.Contains(ref.csv["missing_at_provider.csv"], fmt.Sprintf(",%d,", lrows["L054"])) {
				t.Errorf("missing_at_provider.csv does not name L054's line %d", lrows["L054"])
			}

			// a problem names its line, through Run with and without Rows
			ledger, results = lineBreakFiles(t, nl, true)
			want := readerRows(t, results)["L040"]
			for _, rows := range []bool{false, true} {
				out := rowsPassRun(t, ledger, results, rows, false, 2)
				var ie *InputError
				if !errors.As(out.err, &ie) || len(ie.Problems) == 0 {
					t.Fatalf("rows %v: %v, want an InputError", rows, out.err)
				}
				if got := ie.Problems[0].Source.Row; got != want {
					t.Errorf("rows %v: the problem is on row %d, want line %d", rows, got, want)
				}
			}
		})
	}
}

// TestRecordsAreLines: the scan finds a blank line or a quoted line break
// anywhere, across its 1 MB blocks too, and nothing in a file whose records
// are one line each.
func TestRecordsAreLines(t *testing.T) {
	dir := t.TempDir()
	const block = 1 << 20
	// pad puts s's first byte at offset at (the line before it goes on)
	pad := func(at int, s string) string {
		head := "merchant_transaction_id,amount\n"
		return head + strings.Repeat("x", at-len(head)) + s
	}
	cases := []struct {
		name string
		text string
		want bool
	}{
		{"lines", "a,b\n1,2\n\"3,\"\"x\"\"\",4\n", true},
		{"CRLF lines, no final line break", "a,b\r\n1,2\r\n\"3\",4", true},
		{"blank line", "a,b\n1,2\n\n3,4\n", false},
		{"CRLF blank line", "a,b\r\n1,2\r\n\r\n3,4\r\n", false},
		{"quoted LF", "a,b\n1,\"2\n3\"\n", false},
		{"quoted CRLF", "a,b\r\n1,\"2\r\n3\"\r\n", false},
		{"quoted CR", "a,b\n1,\"2\r3\"\n", false},
		{"blank line at the end", "a,b\n1,2\n\n", false},
		{"blank line across blocks", pad(block-1, "\n\n1,2\n"), false},
		{"CRLF blank line across blocks (\\r\\n|\\r\\n)", pad(block-2, "\r\n\r\n1,2\r\n"), false},
		{"CRLF blank line across blocks (\\r\\n\\r|\\n)", pad(block-3, "\r\n\r\n1,2\r\n"), false},
		{"CRLF blank line across blocks (\\r|\\n\\r\\n)", pad(block-1, "\r\n\r\n1,2\r\n"), false},
		{"CRLF lines across blocks", pad(block-1, "\r\n1,2\r\n3,4\r\n"), true},
		{"quoted LF across blocks", pad(block-4, "\n1,\"2\n3\"\n"), false},
		{"quoted LF in the next block", pad(block-4, "\n1,\"2,3,4\n5\"\n"), false},
		{"quote across blocks, no line break", pad(block-3, "\n1,\"2,3,4\"\n5,6\n"), true},
	}
	for _, c := range cases {
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := recordsAreLines(context.Background(), path); err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

func BenchmarkRecordsAreLines(b *testing.B) {
	path := os.Getenv("PAYBATCH_LINES_CSV")
	if path == "" {
		b.Skip("PAYBATCH_LINES_CSV not set")
	}
	for b.Loop() {
		if ok, err := recordsAreLines(context.Background(), path); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// TestLineScanAtLoad: with Options.Rows a CSV DuckDB reads is scanned
// (recordsAreLines) from its load on, beside it (startLineScan), and Run
// takes that answer; without Rows (reconcile --json numbers nothing) no
// scan starts. A scan stopped before its end (Close) is run again when
// its answer is asked for, so the answer is always the file's.
func TestLineScanAtLoad(t *testing.T) {
	ledger, results := lineBreakFiles(t, "\n", false)
	dir := t.TempDir()
	plain := writeFile(t, dir, "plain.csv", "merchant_transaction_id,amount,currency,status\nA1,1.00,EUR,APPROVED\nA2,2.00,EUR,APPROVED\n")
	ctx := context.Background()
	for _, rows := range []bool{false, true} {
		r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.LoadLedger(ctx, ledger, ""); err != nil {
			t.Fatal(err)
		}
		if err := r.LoadResults(ctx, plain, ""); err != nil {
			t.Fatal(err)
		}
		for _, s := range r.sources {
			if (s.lineScan != nil) != rows {
				t.Errorf("rows %v: %s scanned from its load: %v", rows, s.path, s.lineScan != nil)
			}
		}
		if rows {
			// the answers, whether the scans were stopped or not
			for _, s := range r.sources {
				s.lineScan.cancel()
				ok, err := s.recordsAreLines(ctx)
				if want := s.path == plain; err != nil || ok != want {
					t.Errorf("%s after its scan was stopped: %v, %v; want %v", s.path, ok, err, want)
				}
			}
		}
		r.Close()
	}
	// a load the scan ends with: the scan is stopped and forgotten
	r, err := Open(ctx, Options{TempDir: t.TempDir(), MemoryLimit: "512MB", Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.LoadResults(ctx, writeFile(t, dir, "nothing.csv", "merchant_transaction_id,amount,currency,status\n"), ""); err == nil {
		t.Fatal("a file without a line loaded")
	}
	if err := r.LoadLedger(ctx, ledger, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadResults(ctx, results, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.sources {
		if !s.linesScanned || !s.staged {
			t.Errorf("%s: scanned %v, read in Go %v (its records are not its lines)", s.path, s.linesScanned, s.staged)
		}
	}
}
