package web

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	if len(h.srv.bounds) != 0 {
		t.Fatalf("bounds kept for a batch being sent")
	}
	if _, err := h.store.Transition(ctx, bt.ID, []State{bt.State}, StateExceptions, "", AuditEvent{User: "test", Action: "test", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	bt = h.batch(bt.ID)
	check(bt, "finished")
	counts, err := h.srv.outcomeCounts(ctx, bt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range outcomeFilters {
		if counts[f] != len(want(f)) {
			t.Errorf("count of %s: %d, want %d", f, counts[f], len(want(f)))
		}
	}
	if len(h.srv.bounds) == 0 {
		t.Fatalf("no bounds kept for a finished batch")
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
}
