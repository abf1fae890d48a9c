package journal

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestKeptStatesFollowChanges walks every state filter of a file in
// keyset pages while state changes wait to be folded — the pages then come
// from the file's kept states (duckdb_states.go) — and holds each walk to
// the same filter read whole (the latest states in SQL): after the first
// changes (the states are built), after more changes committed since
// (kept current by the commits), after rows are added to the file by
// Ingest (dropped and built again), with two sheets sharing row numbers,
// and with another file's changes in between.
func TestKeptStatesFollowChanges(t *testing.T) {
	ctx := context.Background()
	j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	row := func(file, sheet string, i int) *Row {
		id := fmt.Sprintf("%s-%s-%d", file, sheet, i)
		return &Row{Key: "pb1-" + id, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Account: "ABC",
			MerchantTxID: id, Amount: paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: int64(100 + i)},
			BodySHA256: id, State: paybatch.StatePending, Source: paybatch.Source{File: file, Sheet: sheet, Row: i},
			CreatedAt: now, UpdatedAt: now, Method: "POST", Path: "/v1/x", Terminal: "ABC", TransactionRef: "T", OrderRef: "O"}
	}
	var rows []*Row
	ingest := func(rs ...*Row) {
		t.Helper()
		if _, err := j.Ingest(ctx, iter.Seq2[*Row, error](func(yield func(*Row, error) bool) {
			for _, r := range rs {
				if !yield(r, nil) {
					return
				}
			}
		}), now); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, rs...)
	}
	var first []*Row
	for i := 2; i < 400; i++ {
		if i%13 != 0 { // gaps, as rejected rows leave
			first = append(first, row("a.csv", "", i))
		}
		if i < 60 {
			first = append(first, row("other.csv", "", i))
		}
	}
	ingest(first...)
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// change saves (committed) the row's next state: i picks it.
	change := func(r *Row, i int) {
		t.Helper()
		c := *r
		switch c.Problem = ""; i % 6 {
		case 0:
			c.State, c.Outcome = paybatch.StateSending, ""
		case 1:
			c.State, c.Outcome = paybatch.StateFinal, paybatch.OutcomeSucceeded
		case 2:
			c.State, c.Outcome = paybatch.StateDeclined, ""
		case 3:
			c.State, c.Outcome = paybatch.StateFinal, paybatch.OutcomeFailed
		case 4:
			c.State, c.Outcome, c.Problem = paybatch.StateAccepted, "", "status: refused"
		case 5:
			c.State, c.Outcome = paybatch.StateFinal, paybatch.OutcomePending
		}
		c.Attempts++
		if err := j.Save(&c); err != nil {
			t.Fatal(err)
		}
		*r = c
	}
	st := func(s ...paybatch.State) []paybatch.State { return s }
	oc := func(o ...paybatch.Outcome) []paybatch.Outcome { return o }
	filters := []Query{
		{States: st(paybatch.StateFinal), Outcomes: oc(paybatch.OutcomeSucceeded)},
		{States: st(paybatch.StateDeclined)},
		{States: st(paybatch.StateFinal), Outcomes: oc(paybatch.OutcomeFailed, paybatch.OutcomeCancelled)},
		{States: st(paybatch.StateRejected, paybatch.StateFailed, paybatch.StateConflict)},
		{States: st(paybatch.StateAccepted, paybatch.StatePending, paybatch.StateSending)},
		{States: st(paybatch.StateFinal), Outcomes: oc(paybatch.OutcomePending, "")},
		{Attention: true},
	}
	check := func(when string, file string) {
		t.Helper()
		if !j.mustUnfolded(t) {
			t.Fatalf("%s: no change waits to be folded", when)
		}
		for fi, f := range filters {
			f.SourceFile = file
			want, err := j.Rows(ctx, f) // whole: the latest states in SQL
			if err != nil {
				t.Fatal(err)
			}
			// pages of 2: every row starts or ends a page, so each is
			// reached across a page boundary, as pages of 1 (a query a
			// row) did; 7 is prime to 2 and to the gaps' 13; 50 holds a
			// filter's rows whole or nearly (sizes 1, 4, 50: 32 cpu-s;
			// 2, 7, 50: 19)
			for _, size := range []int{2, 7, 50} {
				var got []*Row
				for after := 0; ; {
					q := f
					q.AfterRow, q.Limit = after, size
					page, err := j.Rows(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, page...)
					if len(page) < size {
						break
					}
					after = page[len(page)-1].Source.Row
				}
				// Keyset pages by row: with two sheets a page after row N
				// holds each sheet's rows after N, so the walk is per sheet
				// below; with one, the walk is the whole filter.
				if slices.ContainsFunc(want, func(r *Row) bool { return r.Source.Sheet != "" }) {
					continue
				}
				if !sameKeys(got, want) {
					t.Fatalf("%s, %s, filter %d in pages of %d: %d rows %v, want %d %v", when, file, fi, size, len(got), firstKeys(got), len(want), firstKeys(want))
				}
			}
		}
	}
	for i, r := range first {
		if r.Source.File == "a.csv" && i%3 != 0 {
			change(r, i)
		}
	}
	check("first changes", "a.csv")
	if j.stateIdx.files["a.csv"] == nil {
		t.Fatal("a.csv's states are not kept")
	}
	for i, r := range first {
		if i%5 == 0 {
			change(r, i+1) // both files: kept states follow, other.csv's are not kept
		}
	}
	check("more changes", "a.csv")
	check("more changes", "other.csv")
	var more []*Row
	for i := 400; i < 460; i++ {
		more = append(more, row("a.csv", "", i))
	}
	ingest(more...)
	check("rows added", "a.csv")
	for i, r := range more {
		change(r, i)
	}
	check("added rows changed", "a.csv")

	// Two sheets with the same row numbers: the page after row N, in
	// (sheet, row) order, is the same as SQL's.
	var book []*Row
	for i := 2; i < 40; i++ {
		book = append(book, row("b.xlsx", "S2", i), row("b.xlsx", "S1", i)) // S2 met first
	}
	ingest(book...)
	for i, r := range book {
		change(r, i/2+i%2)
	}
	for _, f := range filters {
		f.SourceFile = "b.xlsx"
		for _, after := range []int{0, 5, 20, 39} {
			for _, size := range []int{1, 3, 50} {
				q := f
				q.AfterRow, q.Limit = after, size
				got, err := j.Rows(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				w := f
				w.AfterRow = after
				all, err := j.Rows(ctx, w)
				if err != nil {
					t.Fatal(err)
				}
				if len(all) > size {
					all = all[:size]
				}
				if !sameKeys(got, all) {
					t.Fatalf("b.xlsx %+v after %d, %d: %v, want %v", f, after, size, firstKeys(got), firstKeys(all))
				}
			}
		}
	}
	if j.stateIdx.files["b.xlsx"] == nil {
		t.Fatal("b.xlsx's states are not kept")
	}
}

func (j *DuckDB) mustUnfolded(t *testing.T) bool {
	t.Helper()
	u, err := j.unfolded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// firstKeys is keysOf's first ten, for messages.
func firstKeys(rs []*Row) []string {
	return keysOf(rs[:min(len(rs), 10)])
}

func keysOf(rs []*Row) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s/%s", r.Key, r.State)
	}
	return out
}

func sameKeys(a, b []*Row) bool {
	return slices.Equal(keysOf(a), keysOf(b))
}

// TestKeptStatesWhileCommitting reads pages by state while another
// goroutine commits changes (the kept states are built while commits land,
// and followed), then walks every filter once the commits are done and
// holds it to the filter read whole. Run with -race it also checks the
// states' locking.
func TestKeptStatesWhileCommitting(t *testing.T) {
	ctx := context.Background()
	j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rows := ingestPending(t, j, "c.csv", "c", 1500, time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	first := *rows[0] // a first change, so that reads see changes waiting
	first.State = paybatch.StateSending
	if err := j.Save(&first); err != nil {
		t.Fatal(err)
	}
	st := func(s ...paybatch.State) []paybatch.State { return s }
	filters := []Query{
		{SourceFile: "c.csv", States: st(paybatch.StateFinal)},
		{SourceFile: "c.csv", States: st(paybatch.StateDeclined)},
		{SourceFile: "c.csv", States: st(paybatch.StatePending, paybatch.StateSending)},
		{SourceFile: "c.csv", Attention: true},
	}
	done := make(chan error, 1)
	go func() {
		for i, r := range rows {
			c := *r
			c.State, c.Attempts = paybatch.StateSending, 1
			if err := j.SaveLater(&c); err != nil {
				done <- err
				return
			}
			c.State = paybatch.StateFinal
			if i%7 == 0 {
				c.State = paybatch.StateDeclined
			}
			if err := j.SaveLater(&c); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for reading := true; reading; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			reading = false
		default:
		}
		for _, f := range filters {
			q := f
			q.AfterRow, q.Limit = 700, 20
			if _, err := j.Rows(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Committed: Save waits for everything queued before it.
	last := *rows[len(rows)-1]
	last.State, last.Attempts = paybatch.StateFinal, 1
	if err := j.Save(&last); err != nil {
		t.Fatal(err)
	}
	for fi, f := range filters {
		want, err := j.Rows(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var got []*Row
		for after := 0; ; {
			q := f
			q.AfterRow, q.Limit = after, 50
			page, err := j.Rows(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < 50 {
				break
			}
			after = page[len(page)-1].Source.Row
		}
		if !sameKeys(got, want) {
			t.Fatalf("filter %d: %d rows %v, want %d %v", fi, len(got), firstKeys(got), len(want), firstKeys(want))
		}
	}
	if j.stateIdx.files["c.csv"] == nil {
		t.Fatal("c.csv's states are not kept")
	}
}

// TestKeptStatesReadAhead: a page of every row of a file while changes
// wait starts reading the file's states in the background; a page by
// state then finds them kept (or waits for the read under way), and is
// the filter's rows. Closing the journal while such a read runs stops it.
func TestKeptStatesReadAhead(t *testing.T) {
	ctx := context.Background()
	open := func() *DuckDB {
		j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		rows := ingestPending(t, j, "r.csv", "r", 3000, time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
		for i, r := range rows[:2000] {
			c := *r
			c.State, c.Attempts = paybatch.StateFinal, 1
			if i%11 == 0 {
				c.State = paybatch.StateDeclined
			}
			if err := j.SaveLater(&c); err != nil {
				t.Fatal(err)
			}
		}
		last := *rows[len(rows)-1]
		last.State = paybatch.StateSending
		if err := j.Save(&last); err != nil { // and everything queued before it
			t.Fatal(err)
		}
		return j
	}
	j := open()
	defer j.Close()
	if _, err := j.Rows(ctx, Query{SourceFile: "r.csv", Limit: 51}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; { // read in the background, no page by state asked
		j.stateIdx.mu.Lock()
		kept := j.stateIdx.files["r.csv"] != nil
		j.stateIdx.mu.Unlock()
		if kept {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a page of every row did not read the file's states ahead")
		}
		time.Sleep(10 * time.Millisecond)
	}
	q := Query{SourceFile: "r.csv", States: []paybatch.State{paybatch.StateDeclined}, AfterRow: 1000, Limit: 51}
	got, err := j.Rows(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	j.stateIdx.mu.Lock()
	kept := j.stateIdx.files["r.csv"] != nil
	j.stateIdx.mu.Unlock()
	if !kept {
		t.Fatal("r.csv's states are not kept after a page by state")
	}
	w := q
	w.Limit = 0
	want, err := j.Rows(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) > 51 {
		want = want[:51]
	}
	if !sameKeys(got, want) || len(got) == 0 {
		t.Fatalf("declined after 1000: %v, want %v", firstKeys(got), firstKeys(want))
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		j.stateIdx.mu.Lock()
		busy := len(j.stateIdx.building) > 0
		j.stateIdx.mu.Unlock()
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the read ahead did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Closed while a read ahead may run: it stops, Close returns.
	j2 := open()
	if _, err := j2.Rows(ctx, Query{SourceFile: "r.csv", Limit: 51}); err != nil {
		t.Fatal(err)
	}
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestKeptStatesOfSends: with KeepSendStates (paybatch serve), committing a
// file's state changes reads its states in the background, so that the first
// page by state — opened from a link, with no page of every row before it —
// finds them kept; without the option (the CLI) nothing is read.
func TestKeptStatesOfSends(t *testing.T) {
	ctx := context.Background()
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("KeepSendStates=%v", keep), func(t *testing.T) {
			j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{KeepSendStates: keep})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			rows := ingestPending(t, j, "s.csv", "s", 2000, time.Date(2026, 12, 4, 13, 0, 0, 0, time.UTC))
			kept := func() bool {
				j.stateIdx.mu.Lock()
				defer j.stateIdx.mu.Unlock()
				return j.stateIdx.files["s.csv"] != nil
			}
			send := func(rs []*Row, declineEvery int) {
				for i, r := range rs {
					c := *r
					c.State, c.Attempts = paybatch.StateFinal, 1
					if i%declineEvery == 0 {
						c.State = paybatch.StateDeclined
					}
					if err := j.Save(&c); err != nil {
						t.Fatal(err)
					}
				}
			}
			send(rows[:500], 7)
			if !keep {
				time.Sleep(200 * time.Millisecond)
				if kept() {
					t.Fatal("states kept without KeepSendStates")
				}
				return
			}
			for deadline := time.Now().Add(20 * time.Second); !kept(); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the committed changes did not read the file's states ahead")
				}
			}
			send(rows[500:1000], 5) // kept current by the commits after the read
			q := Query{SourceFile: "s.csv", States: []paybatch.State{paybatch.StateDeclined}, AfterRow: 300, Limit: 40}
			got, err := j.Rows(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i, r := range rows[:1000] {
				declined := (i < 500 && i%7 == 0) || (i >= 500 && (i-500)%5 == 0)
				if declined && r.Source.Row > 300 && len(want) < 40 {
					want = append(want, r.Key)
				}
			}
			if len(want) != 40 || !sameKeyList(got, want) {
				t.Fatalf("declined after 300: %v, want %v", firstKeys(got), want)
			}
		})
	}
}

// TestKeptStatesReadAheadOnce: the two occasions that read a file's states
// ahead (readAhead) differ in one way. With KeepSendStates, a commit reads a
// file once per Ingest: its states, once dropped for other files', are not
// read again at its next commit; a page of every row of the file reads them
// again. (A commit tells the kept states synchronously, and readAhead marks
// the file as being read before it returns, so both are seen at once.)
func TestKeptStatesReadAheadOnce(t *testing.T) {
	ctx := context.Background()
	j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{KeepSendStates: true})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	files := map[string][]*Row{}
	for _, f := range []string{"s", "t", "u"} {
		files[f] = ingestPending(t, j, f+".csv", f, 300, now)
	}
	seen := func(file string) (kept, reading bool) {
		j.stateIdx.mu.Lock()
		defer j.stateIdx.mu.Unlock()
		return j.stateIdx.files[file] != nil, j.stateIdx.building[file] != nil
	}
	send := func(f string, i int) {
		t.Helper()
		c := *files[f][i]
		c.State, c.Attempts = paybatch.StateFinal, 1
		if err := j.Save(&c); err != nil {
			t.Fatal(err)
		}
	}
	waitKept := func(file string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if kept, _ := seen(file); kept {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's states were not read ahead", file)
			}
		}
	}
	for _, f := range []string{"s", "t", "u"} { // u's states drop s's (maxStateFiles)
		send(f, 0)
		waitKept(f + ".csv")
	}
	if kept, reading := seen("s.csv"); kept || reading {
		t.Fatalf("s.csv kept %v, being read %v: want dropped for t.csv and u.csv", kept, reading)
	}
	send("s", 1)
	if kept, reading := seen("s.csv"); kept || reading {
		t.Fatal("a second commit of s.csv read its states again since the Ingest")
	}
	if _, err := j.Rows(ctx, Query{SourceFile: "s.csv", Limit: 20}); err != nil {
		t.Fatal(err)
	}
	if kept, reading := seen("s.csv"); !kept && !reading {
		t.Fatal("a page of every row of s.csv did not read its dropped states again")
	}
	waitKept("s.csv")
}

func sameKeyList(got []*Row, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i, r := range got {
		if r.Key != want[i] {
			return false
		}
	}
	return true
}

// ingestPending journals pending refunds of file at rows 2 to end-1, keyed
// prefix-<row>, and returns them.
func ingestPending(t *testing.T, j *DuckDB, file, prefix string, end int, now time.Time) []*Row {
	t.Helper()
	var rows []*Row
	for i := 2; i < end; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		rows = append(rows, &Row{Key: "pb1-" + id, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Account: "ABC",
			MerchantTxID: id, Amount: paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: int64(100 + i)},
			BodySHA256: id, State: paybatch.StatePending, Source: paybatch.Source{File: file, Row: i},
			CreatedAt: now, UpdatedAt: now, Method: "POST", Path: "/v1/x", Terminal: "ABC", TransactionRef: "T", OrderRef: "O"})
	}
	if _, err := j.Ingest(context.Background(), iter.Seq2[*Row, error](func(yield func(*Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}), now); err != nil {
		t.Fatal(err)
	}
	return rows
}
