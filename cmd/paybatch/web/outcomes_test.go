package web

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// TestOutcomePagesOfFinishedBatch walks every outcome filter of a batch,
// page by page, while it is being sent (keyset pages) and once finished
// (pages read through the bounds kept for it): both give every row of the
// filter once, in row order. Rows that leave a filter after its bounds were
// kept are noticed (a page comes up short) and the pages stay right.
func TestOutcomePagesOfFinishedBatch(t *testing.T) {
	onBothJournals(t, testOutcomePagesOfFinishedBatch)
}

func testOutcomePagesOfFinishedBatch(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	const n = 7*pageSize + 13
	var csv strings.Builder
	csv.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
	for i := range n {
		fmt.Fprintf(&csv, "ABC123,TX%06d,OR%06d,pg-%06d,1.00,USD\n", i, i, i)
	}
	bt := h.batch(h.uploaded(uma, "refund", "pages.csv", []byte(csv.String())))
	// Journal the rows as a send would leave them: a third declined, a third
	// still pending, some failed, one in 50 not journaled.
	ctx := context.Background()
	class := map[int]string{} // source row → filter
	var rows []*journal.Row
	for i := range n {
		if i%50 == 49 {
			continue
		}
		r := &journal.Row{Key: fmt.Sprintf("pb1-pages-%06d", i), Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Account: "ABC123",
			MerchantTxID: fmt.Sprintf("pg-%06d", i), Amount: paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: 100},
			BodySHA256: fmt.Sprint(i), State: paybatch.StateFinal, Outcome: paybatch.OutcomeSucceeded,
			Source: paybatch.Source{File: bt.Path, Sheet: bt.Sheet, Row: i + 2}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		switch {
		case i%3 == 0:
			r.State, r.Outcome = paybatch.StateDeclined, ""
		case i%3 == 1:
			r.State, r.Outcome = paybatch.StatePending, ""
		case i%11 == 0:
			r.Outcome = paybatch.OutcomeFailed
		}
		class[i+2] = outcomeClass(journalRowOf(r))
		rows = append(rows, r)
	}
	if _, err := h.journal.Ingest(ctx, func(yield func(*journal.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := func(f string) []int {
		var out []int
		for row := 2; row < n+2; row++ {
			if c, ok := class[row]; ok && (f == "all" || c == f) {
				out = append(out, row)
			}
		}
		return out
	}
	walk := func(b Batch, f string) []int {
		var got []int
		for after, pages := 0, 0; ; pages++ {
			if pages > n {
				t.Fatalf("%s: pages do not end", f)
			}
			rs, next, err := h.srv.outcomePage(ctx, b, f, after, pageSize)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) > pageSize || (next > 0 && len(rs) != pageSize) {
				t.Fatalf("%s after %d: a page of %d rows, next %d", f, after, len(rs), next)
			}
			for _, r := range rs {
				got = append(got, r.Row)
			}
			if next == 0 {
				return got
			}
			after = next
		}
	}
	check := func(b Batch, when string) {
		for _, f := range outcomeFilters {
			if got, w := walk(b, f), want(f); !slices.Equal(got, w) {
				t.Errorf("%s, %s: %d rows %v…, want %d %v…", when, f, len(got), got[:min(len(got), 5)], len(w), w[:min(len(w), 5)])
			}
		}
	}
	check(bt, "while sending")
	if len(h.srv.indexes) != 0 {
		t.Fatalf("an outcome index kept for a batch being sent")
	}
	if _, err := h.store.Transition(ctx, bt.ID, []State{bt.State}, StateExceptions, "", AuditEvent{User: "test", Action: "test", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	bt = h.batch(bt.ID)
	check(bt, "finished") // keyset pages while the index is counted, bounded reads as it fills in
	x := waitOutcomeIndex(t, h.srv, bt)
	checkCounts := func(when string) {
		t.Helper()
		counts := waitOutcomeIndex(t, h.srv, bt).counts
		for _, f := range outcomeFilters {
			if counts[f] != len(want(f)) {
				t.Errorf("%s: count of %s: %d, want %d", when, f, counts[f], len(want(f)))
			}
		}
	}
	checkCounts("finished")
	if len(x.bounds) != 7 {
		t.Fatalf("bounds of %d filter terms kept, want 7", len(x.bounds))
	}
	check(bt, "finished, bounds kept")

	// Sixty pending rows are polled later and succeed: the first range of
	// the pending bounds no longer holds a page.
	flipped := 0
	for _, r := range rows {
		if r.State != paybatch.StatePending || flipped == 60 {
			continue
		}
		r.State, r.Outcome, r.UpdatedAt = paybatch.StateFinal, paybatch.OutcomeSucceeded, time.Now()
		if err := h.journal.Save(r); err != nil {
			t.Fatal(err)
		}
		class[r.Source.Row] = "succeeded"
		flipped++
	}
	if err := h.journal.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check(bt, "after rows changed")

	// Later polls move more rows, as a scheduled job on the server's
	// journal does: through the server's journal turn. The counts kept
	// for the batch are counted again, and the pages follow.
	turn := h.srv.JournalTurn()
	turn.Lock()
	moved := 0
	for _, r := range rows {
		if r.State != paybatch.StatePending || moved == 2*pageSize+7 {
			continue
		}
		r.State, r.Outcome, r.UpdatedAt = paybatch.StateDeclined, "", time.Now()
		if err := h.journal.Save(r); err != nil {
			t.Fatal(err)
		}
		class[r.Source.Row] = "declined"
		moved++
	}
	if err := h.journal.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	turn.Unlock()
	checkCounts("after a later poll")
	check(bt, "after a later poll")
}

// waitOutcomeIndex waits for the batch's outcome index to be counted at
// the server's current journal version, and returns it.
func waitOutcomeIndex(t *testing.T, s *Server, b Batch) *outcomeIndex {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if x := s.outcomeIndexOf(b); x != nil && isDone(x.done) {
			if x.err != nil {
				t.Fatal(x.err)
			}
			return x
		}
		if time.Now().After(deadline) {
			t.Fatal("the outcome index was not counted in a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOutcomeCountsAfterOtherProcesses: rows changed where the server does
// not see it (another process on a shared PostgreSQL journal: no turn
// taken) are counted again once the index is older than outcomeIndexTTL,
// in the background, while the old counts serve.
func TestOutcomeCountsAfterOtherProcesses(t *testing.T) {
	onBothJournals(t, func(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
		var mu sync.Mutex
		now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		h := newHarness(t, func(c *Config) { c.Now = clock })
		uma := h.signIn("uma")
		var csv strings.Builder
		csv.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
		for i := range 120 {
			fmt.Fprintf(&csv, "ABC123,TX%06d,OR%06d,op-%06d,1.00,USD\n", i, i, i)
		}
		bt := h.batch(h.uploaded(uma, "refund", "other.csv", []byte(csv.String())))
		ctx := context.Background()
		var rows []*journal.Row
		for i := range 120 {
			rows = append(rows, &journal.Row{Key: fmt.Sprintf("pb1-other-%06d", i), Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Account: "ABC123",
				MerchantTxID: fmt.Sprintf("op-%06d", i), Amount: paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: 100},
				BodySHA256: fmt.Sprint(i), State: paybatch.StatePending, Source: paybatch.Source{File: bt.Path, Sheet: bt.Sheet, Row: i + 2},
				CreatedAt: clock(), UpdatedAt: clock()})
		}
		if _, err := h.journal.Ingest(ctx, func(yield func(*journal.Row, error) bool) {
			for _, r := range rows {
				if !yield(r, nil) {
					return
				}
			}
		}, clock()); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.Transition(ctx, bt.ID, []State{bt.State}, StateExceptions, "", AuditEvent{User: "test", Action: "test", At: clock()}); err != nil {
			t.Fatal(err)
		}
		bt = h.batch(bt.ID)
		if c := waitOutcomeIndex(t, h.srv, bt).counts; c["pending"] != 120 || c["succeeded"] != 0 {
			t.Fatalf("counts %v", c)
		}
		for _, r := range rows[:70] {
			r.State, r.Outcome = paybatch.StateFinal, paybatch.OutcomeSucceeded
			if err := h.journal.Save(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.journal.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if c := waitOutcomeIndex(t, h.srv, bt).counts; c["pending"] != 120 {
			t.Fatalf("counted again before its time: %v", c)
		}
		mu.Lock()
		now = now.Add(outcomeIndexTTL + time.Second)
		mu.Unlock()
		deadline := time.Now().Add(time.Minute)
		for {
			c := waitOutcomeIndex(t, h.srv, bt).counts
			if c["pending"] == 50 && c["succeeded"] == 70 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("counts after the TTL: %v", c)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// outcomeClass is the filter a row belongs to besides "all", decided in Go:
// the reference for outcomeTerms' journal queries.
func outcomeClass(r journalRow) string {
	switch {
	case r.State == paybatch.StateFinal && r.Outcome == paybatch.OutcomeSucceeded:
		return "succeeded"
	case r.State == paybatch.StateDeclined:
		return "declined"
	case r.State == paybatch.StateFinal && (r.Outcome == paybatch.OutcomeFailed || r.Outcome == paybatch.OutcomeCancelled):
		return "failed"
	case r.State == paybatch.StateRejected, r.State == paybatch.StateFailed, r.State == paybatch.StateConflict:
		return "failed"
	case r.State == paybatch.StateAccepted, r.State == paybatch.StatePending, r.State == paybatch.StateSending:
		return "pending"
	}
	return "other"
}
