// Package journaltest is the conformance suite every journal backend must
// pass (DuckDB now, PostgreSQL later): Run(t, open) with a constructor that
// opens a journal by name, the same name reopening the same journal.
package journaltest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// Opener opens the journal called name (created empty the first time);
// the test closes what it opens.
type Opener func(tb testing.TB, name string) journal.Journal

var base = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// Row is a pending refund row numbered i, as the engine would journal it.
func Row(i int, minor int64) *journal.Row {
	return &journal.Row{Key: fmt.Sprintf("pb1-test-%05d", i), Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
		Account: "ABC123", MerchantTxID: fmt.Sprintf("rf-%05d", i),
		Amount:     paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: minor},
		BodySHA256: fmt.Sprintf("hash-%d-%d", i, minor), State: paybatch.StatePending,
		Source: paybatch.Source{File: "refunds.csv", Row: i + 2}, CreatedAt: base, UpdatedAt: base,
		Method: "POST", Path: "/v1/payments/refund/ABC123", Body: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		Terminal: "ABC123", TransactionRef: fmt.Sprintf("TXA%05d", i), OrderRef: fmt.Sprintf("ORA%05d", i)}
}

// Seq yields rows.
func Seq(rows ...*journal.Row) iter.Seq2[*journal.Row, error] {
	return func(yield func(*journal.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// failure is an error must met; run turns it into the subtest's failure.
type failure struct{ err error }

func must[T any](v T, err error) T {
	if err != nil {
		panic(failure{err})
	}
	return v
}

// run runs one subtest, failing it (not the binary) on a must error.
func run(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		defer func() {
			if r := recover(); r != nil {
				if f, ok := r.(failure); ok {
					t.Fatal(f.err)
				}
				panic(r)
			}
		}()
		fn(t)
	})
}

func byMTID(tb testing.TB, j journal.Journal) map[string]*journal.Row {
	tb.Helper()
	out := map[string]*journal.Row{}
	for _, r := range must(j.Rows(context.Background(), journal.Query{})) {
		out[r.MerchantTxID] = r
	}
	return out
}

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()

	run(t, "IngestClassifiesAndPersists", func(t *testing.T) {
		j := open(t, "a")
		in := must(j.Ingest(ctx, Seq(Row(1, 100), Row(2, 200), Row(2, 200), Row(3, 300)), base))
		if in.Rows != 3 || in.New != 3 || in.Duplicates != 1 || in.ConflictCount != 0 {
			t.Fatalf("first ingest %+v", in)
		}
		// Again, with row 2 edited and row 4 new.
		in = must(j.Ingest(ctx, Seq(Row(1, 100), Row(2, 250), Row(4, 400)), base))
		if in.Rows != 2 || in.New != 1 || in.ConflictCount != 1 || len(in.Conflicts) != 1 ||
			in.Conflicts[0].MerchantTxID != "rf-00002" || in.Conflicts[0].NewAmount.Minor != 250 ||
			in.Conflicts[0].State != paybatch.StatePending {
			t.Fatalf("second ingest %+v", in)
		}
		if n := must(j.Count(ctx, journal.Filter{})); n != 2 {
			t.Errorf("run set %d rows, want 2", n)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = open(t, "a")
		defer j.Close()
		rows := byMTID(t, j)
		if len(rows) != 4 || rows["rf-00002"].Amount.Minor != 200 || string(rows["rf-00003"].Body) != `{"n":3}` {
			t.Fatalf("after reopen: %d rows %+v", len(rows), rows["rf-00002"])
		}
		cs := must(j.Conflicts(ctx))
		if len(cs) != 1 || cs[0].NewHash != Row(2, 250).BodySHA256 {
			t.Errorf("conflicts %+v", cs)
		}
	})

	run(t, "FailedInputJournalsNothing", func(t *testing.T) {
		j := open(t, "b")
		defer j.Close()
		boom := errors.New("row 9: file changed")
		src := func(yield func(*journal.Row, error) bool) {
			for i := range 8 {
				if !yield(Row(i, 100), nil) {
					return
				}
			}
			yield(nil, boom)
		}
		if _, err := j.Ingest(ctx, src, base); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		if n := len(must(j.Rows(ctx, journal.Query{}))); n != 0 {
			t.Fatalf("%d rows journaled from a failed input", n)
		}
	})

	run(t, "StateChangesSurviveReopenWithoutFlush", func(t *testing.T) {
		j := open(t, "c")
		must(j.Ingest(ctx, Seq(Row(1, 100), Row(2, 200)), base))
		var r1 *journal.Row
		for page, err := range j.Pages(ctx, journal.Filter{States: []paybatch.State{paybatch.StatePending}}) {
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if r.MerchantTxID == "rf-00001" {
					r1 = r
				}
			}
		}
		r1.State, r1.Attempts, r1.SentAt, r1.UpdatedAt = paybatch.StateSending, 1, base, base
		if err := j.Save(r1); err != nil {
			t.Fatal(err)
		}
		// Readers see the latest state before any Flush.
		if got := byMTID(t, j)["rf-00001"]; got.State != paybatch.StateSending || got.Attempts != 1 {
			t.Fatalf("before flush: %s %d", got.State, got.Attempts)
		}
		r1.State, r1.ProviderID, r1.PollRefusedAt = paybatch.StateAccepted, "TX1", base.Add(time.Minute)
		if err := j.SaveLater(r1); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = open(t, "c")
		defer j.Close()
		got := byMTID(t, j)["rf-00001"]
		if got.State != paybatch.StateAccepted || got.ProviderID != "TX1" || !got.SentAt.Equal(base) ||
			!got.PollRefusedAt.Equal(base.Add(time.Minute)) {
			t.Fatalf("after reopen: %+v", got)
		}
		// Poll state is a column: a phase that started before the refusal
		// skips the row, a later one asks again.
		if n := must(j.SelectAccepted(ctx, "")); n != 1 {
			t.Fatalf("accepted %d", n)
		}
		f := journal.Filter{States: []paybatch.State{paybatch.StateAccepted}, Pollable: true, PollStart: base}
		if n := must(j.Count(ctx, f)); n != 0 {
			t.Errorf("refused row pollable in the phase that refused it")
		}
		f.PollStart = base.Add(time.Hour)
		if n := must(j.Count(ctx, f)); n != 1 {
			t.Errorf("refused row not pollable in a later phase")
		}
	})

	run(t, "CountsTallyAttention", func(t *testing.T) {
		j := open(t, "d")
		defer j.Close()
		must(j.Ingest(ctx, Seq(Row(1, 100), Row(2, 200), Row(3, 300), Row(4, 0)), base))
		set := func(mtid string, fn func(*journal.Row)) {
			for page, err := range j.Pages(ctx, journal.Filter{}) {
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page {
					if r.MerchantTxID == mtid {
						fn(r)
						if err := j.Save(r); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		set("rf-00001", func(r *journal.Row) { r.State, r.Outcome = paybatch.StateFinal, paybatch.OutcomeSucceeded })
		set("rf-00002", func(r *journal.Row) { r.State, r.Outcome = paybatch.StateFinal, paybatch.OutcomeSucceeded })
		set("rf-00003", func(r *journal.Row) { r.State, r.Problem = paybatch.StateRejected, "HTTP 404" })
		if err := j.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		tl := must(j.Tally(ctx))
		if tl.States[paybatch.StateFinal] != 2 || tl.States[paybatch.StateRejected] != 1 || tl.States[paybatch.StatePending] != 1 ||
			tl.Totals[paybatch.StateFinal]["USD"].Minor != 300 || tl.Outcomes[paybatch.OutcomeSucceeded] != 2 {
			t.Errorf("tally %+v", tl)
		}
		total := 0
		for _, c := range must(j.Counts(ctx)) {
			total += c.Rows
		}
		if total != 4 {
			t.Errorf("counts total %d", total)
		}
		att := must(j.Rows(ctx, journal.Query{Attention: true}))
		if len(att) != 2 || att[0].MerchantTxID != "rf-00003" || att[1].MerchantTxID != "rf-00004" {
			t.Errorf("attention %d rows", len(att))
		}
		if got := must(j.Rows(ctx, journal.Query{States: []paybatch.State{paybatch.StateFinal}})); len(got) != 2 {
			t.Errorf("final rows %d", len(got))
		}
		if got := must(j.Rows(ctx, journal.Query{MerchantTxID: "rf-00004"})); len(got) != 1 || got[0].Amount.Minor != 0 {
			t.Errorf("by id %+v", got)
		}
		// Keyset paging through one file, outcomes, counts.
		f := journal.Query{SourceFile: "refunds.csv"}
		var pages []string
		for q := (journal.Query{SourceFile: f.SourceFile, Limit: 3}); ; {
			page := must(j.Rows(ctx, q))
			if len(page) == 0 {
				break
			}
			var ids []string
			for _, r := range page {
				ids = append(ids, r.MerchantTxID)
			}
			pages = append(pages, strings.Join(ids, ","))
			q.AfterRow = page[len(page)-1].Source.Row
		}
		if got := strings.Join(pages, " | "); got != "rf-00001,rf-00002,rf-00003 | rf-00004" {
			t.Errorf("keyset pages %q", got)
		}
		succ := journal.Query{SourceFile: f.SourceFile, States: []paybatch.State{paybatch.StateFinal}, Outcomes: []paybatch.Outcome{paybatch.OutcomeSucceeded}}
		if got := must(j.Rows(ctx, succ)); len(got) != 2 || got[1].MerchantTxID != "rf-00002" {
			t.Errorf("succeeded rows %d", len(got))
		}
		if n := must(j.CountRows(ctx, succ)); n != 2 {
			t.Errorf("CountRows(succeeded) = %d, want 2", n)
		}
		if n := must(j.CountRows(ctx, f)); n != 4 {
			t.Errorf("CountRows(file) = %d, want 4", n)
		}
		if n := must(j.CountRows(ctx, journal.Query{SourceFile: "other.csv"})); n != 0 {
			t.Errorf("CountRows(other file) = %d, want 0", n)
		}
	})

	run(t, "RejectsMaskedOnce", func(t *testing.T) {
		j := open(t, "e")
		defer j.Close()
		rj := journal.Reject{Source: paybatch.Source{File: "b.csv", Row: 7}, Column: "description",
			Value: "card 4111 1111 1111 1111", Reason: `has "4111111111111111"`, MerchantTxID: "X1"}
		for range 2 {
			if err := j.RecordRejects(ctx, []journal.Reject{rj}); err != nil {
				t.Fatal(err)
			}
		}
		got := must(j.Rejects(ctx))
		if len(got) != 1 || strings.Contains(got[0].Value+got[0].Reason, "1111 1111 1111") ||
			strings.Contains(got[0].Reason, "4111111111111111") || got[0].Value != paybatch.MaskCardNumbers(rj.Value) {
			t.Errorf("rejects %+v", got)
		}
	})

	run(t, "Inputs", func(t *testing.T) {
		j := open(t, "f")
		defer j.Close()
		must(j.Ingest(ctx, Seq(Row(1, 100)), base))
		in := journal.Input{Path: "refunds.csv", SHA256: "abc", Rows: 1, Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry}
		if err := j.RecordInput(ctx, in, base); err != nil {
			t.Fatal(err)
		}
		if done := must(j.InputProcessed(ctx, "refunds.csv", "abc")); done {
			t.Error("processed with a pending row")
		}
		for page := range j.Pages(ctx, journal.Filter{}) {
			for _, r := range page {
				r.State = paybatch.StateDeclined
				if err := j.Save(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if done := must(j.InputProcessed(ctx, "refunds.csv", "abc")); !done {
			t.Error("not processed with every row finished")
		}
		if done := must(j.InputProcessed(ctx, "refunds.csv", "other")); done {
			t.Error("processed under another hash")
		}
	})

	run(t, "Runs", func(t *testing.T) {
		j := open(t, "g")
		defer j.Close()
		ins := []journal.RunInput{{Path: "a.csv", SHA256: "h1", Rows: 10}, {Path: "b.csv", SHA256: "h2", Rows: 3}}
		if err := j.StartRun(ctx, journal.RunStart{ID: "r1", Started: base, Inputs: ins}); err != nil {
			t.Fatal(err)
		}
		if err := j.StartRun(ctx, journal.RunStart{ID: "r1", Started: base}); !errors.Is(err, journal.ErrRunExists) {
			t.Errorf("a run id started twice: %v, want ErrRunExists", err)
		}
		if err := j.StartRun(ctx, journal.RunStart{ID: "r2", Started: base.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		steps := []journal.Step{journal.StepSubmitted, journal.StepReconciled, journal.StepReportWritten, journal.StepEmailed, journal.StepFinished}
		for i, s := range steps {
			if err := j.MarkRun(ctx, "r1", s, base.Add(time.Duration(i+1)*time.Minute), "out/report-r1.xlsx"); err != nil {
				t.Fatal(err)
			}
		}
		// A step marked again keeps its first time (a resumed run).
		if err := j.MarkRun(ctx, "r1", journal.StepReportWritten, base.Add(time.Hour), "other.xlsx"); err != nil {
			t.Fatal(err)
		}
		if err := j.MarkRun(ctx, "nope", journal.StepSubmitted, base, ""); !errors.Is(err, journal.ErrNoRun) {
			t.Errorf("mark unknown run: %v", err)
		}
		r := must(j.Run(ctx, "r1"))
		if !r.Done() || len(r.Inputs) != 2 || r.Inputs[1] != ins[1] || r.ReportPath != "out/report-r1.xlsx" ||
			!r.ReportWritten.Equal(base.Add(3*time.Minute)) || !r.Emailed.Equal(base.Add(4*time.Minute)) || !r.Started.Equal(base) {
			t.Errorf("run %+v", r)
		}
		all := must(j.Runs(ctx, journal.RunQuery{}))
		if len(all) != 2 || all[0].ID != "r2" {
			t.Errorf("runs %+v", all)
		}
		open := must(j.Runs(ctx, journal.RunQuery{Unfinished: true}))
		if len(open) != 1 || open[0].ID != "r2" || open[0].Done() {
			t.Errorf("unfinished %+v", open)
		}
		if _, err := j.Run(ctx, "nope"); !errors.Is(err, journal.ErrNoRun) {
			t.Errorf("run nope: %v", err)
		}
	})

	run(t, "Pages", func(t *testing.T) {
		j := open(t, "h")
		defer j.Close()
		var rows []*journal.Row
		for i := range 50 {
			rows = append(rows, Row(i, int64(100+i)))
		}
		must(j.Ingest(ctx, Seq(rows...), base))
		n := 0
		for page, err := range j.Pages(ctx, journal.Filter{States: []paybatch.State{paybatch.StatePending}}) {
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if r.MerchantTxID != fmt.Sprintf("rf-%05d", n) {
					t.Fatalf("page order: %s at %d", r.MerchantTxID, n)
				}
				n++
			}
		}
		if n != 50 {
			t.Errorf("%d rows paged", n)
		}
	})
	run(t, "IDsFromOtherFiles", func(t *testing.T) {
		j := open(t, "i")
		defer j.Close()
		// counted yields ids and counts how many were taken: the method
		// must take them all (an upload's reader is waiting on it).
		taken := 0
		counted := func(ids ...string) iter.Seq[string] {
			taken = 0
			return func(yield func(string) bool) {
				for _, id := range ids {
					taken++
					if !yield(id) {
						return
					}
				}
			}
		}
		ask := func(file string, limit int, ids ...string) ([]string, int) {
			first, n, err := j.IDsFromOtherFiles(ctx, file, counted(ids...), limit)
			if err != nil {
				t.Fatal(err)
			}
			if taken != len(ids) {
				t.Fatalf("%d of %d ids taken", taken, len(ids))
			}
			return first, n
		}
		if first, n := ask("new.csv", 5, "rf-00001", "rf-00002"); n != 0 || len(first) != 0 {
			t.Fatalf("empty journal: %v, %d", first, n)
		}
		var rows []*journal.Row
		for i := range 6 {
			r := Row(i, int64(100+i))
			if i >= 4 {
				r.Source.File = "old.csv"
			}
			rows = append(rows, r)
		}
		must(j.Ingest(ctx, Seq(rows...), base))
		// Asked as the file those rows came from: none is from another file
		// but rf-00004 and rf-00005.
		if first, n := ask("refunds.csv", 5, "rf-00001", "rf-00002", "rf-00009"); n != 0 || len(first) != 0 {
			t.Fatalf("same file: %v, %d", first, n)
		}
		first, n := ask("new.csv", 2, "rf-00005", "RF-00001", "rf-00003", "rf-00009", "rf-00000", "rf-00003")
		// In journal order (source file, row), limited to 2, counted in full;
		// an id differing in case is not the same id.
		if n != 3 || len(first) != 2 || first[0] != "rf-00005" || first[1] != "rf-00000" {
			t.Fatalf("new file: %v, %d", first, n)
		}
		if first, n := ask("old.csv", 5, "rf-00004", "rf-00001"); n != 1 || len(first) != 1 || first[0] != "rf-00001" {
			t.Fatalf("old file: %v, %d", first, n)
		}
		many := make([]string, 0, 20_000)
		for i := range 20_000 {
			many = append(many, fmt.Sprintf("rf-%05d", 20_000-i))
		}
		if first, n := ask("new.csv", 5, many...); n != 5 || len(first) != 5 || first[0] != "rf-00004" || first[4] != "rf-00003" {
			t.Fatalf("20,000 ids: %v, %d", first, n)
		}
	})
	run(t, "PageBoundsAndThroughRow", func(t *testing.T) {
		j := open(t, "k")
		defer j.Close()
		// 40 rows of refunds.csv at every third source row, one in four
		// declined, and rows of another file with the same source rows.
		var rows []*journal.Row
		for i := range 40 {
			r := Row(3*i, int64(100+i))
			if i%4 == 0 {
				r.State = paybatch.StateDeclined
			}
			o := Row(1000+i, 100)
			o.Source.File, o.Source.Row = "other.csv", r.Source.Row
			rows = append(rows, o, r)
		}
		must(j.Ingest(ctx, Seq(rows...), base))
		all := journal.Query{SourceFile: "refunds.csv"}
		declined := journal.Query{SourceFile: "refunds.csv", States: []paybatch.State{paybatch.StateDeclined}}
		none := journal.Query{SourceFile: "refunds.csv", States: []paybatch.State{paybatch.StateFailed}}
		counts := must(j.CountStates(ctx, all))
		if len(counts) != 2 || counts[0].State != paybatch.StateDeclined || counts[0].Rows != 10 ||
			counts[1].State != paybatch.StatePending || counts[1].Rows != 30 {
			t.Errorf("CountStates of refunds.csv: %+v", counts)
		}
		const size = 6
		for _, c := range []struct {
			name string
			q    journal.Query
			want journal.PageBounds
		}{
			// Row(3i) is source row 3i+2: the 6th row is i=5 (17), …
			{"all", all, journal.PageBounds{Ends: []int{17, 35, 53, 71, 89, 107}, Last: 119, Rows: 40}},
			// declined are i = 0, 4, …, 36: the 6th is i=20 (62), the last i=36 (110).
			{"declined", declined, journal.PageBounds{Ends: []int{62}, Last: 110, Rows: 10}},
			{"none", none, journal.PageBounds{}},
		} {
			pb := must(j.PageBounds(ctx, c.q, size))
			if !slices.Equal(pb.Ends, c.want.Ends) || pb.Last != c.want.Last || pb.Rows != c.want.Rows {
				t.Errorf("%s: bounds %+v, want %+v", c.name, pb, c.want)
			}
			// Every page read as one bounded range is the keyset page.
			for after := 0; after <= 125; after++ {
				q := c.q
				q.AfterRow, q.Limit = after, size+1
				want := must(j.Rows(ctx, q))
				through, ok := pb.Through(after)
				if !ok {
					if len(want) != 0 {
						t.Fatalf("%s after %d: no rows said, %d found", c.name, after, len(want))
					}
					continue
				}
				q.ThroughRow = through
				got := must(j.Rows(ctx, q))
				if len(got) != len(want) {
					t.Fatalf("%s after %d through %d: %d rows, want %d", c.name, after, through, len(got), len(want))
				}
				for i := range got {
					if got[i].Key != want[i].Key {
						t.Fatalf("%s after %d: row %d is %s, want %s", c.name, after, i, got[i].Key, want[i].Key)
					}
				}
			}
		}
	})
	run(t, "KeysetPagesByState", func(t *testing.T) {
		// Keyset pages of one file filtered by state and outcome hold the
		// rows of the filter in source order, whatever the filter's
		// density and page size: with the rows as journaled, with later
		// state changes not yet flushed, and flushed. Other files share
		// the source rows.
		j := open(t, "pages")
		defer j.Close()
		pairs := []struct {
			s paybatch.State
			o paybatch.Outcome
		}{{paybatch.StateFinal, paybatch.OutcomeSucceeded}, {paybatch.StatePending, ""}, {paybatch.StateDeclined, ""},
			{paybatch.StateFinal, paybatch.OutcomeFailed}, {paybatch.StateAccepted, ""}, {paybatch.StateFinal, paybatch.OutcomePending}}
		var rows []*journal.Row
		for i := range 150 {
			r := Row(i, int64(100+i))
			p := pairs[0]
			switch {
			case i%97 == 5:
				p = pairs[3] // sparse
			case i%7 == 0:
				p = pairs[2]
			case i < 60:
				p = pairs[1]
			case i%3 == 0:
				p = pairs[4]
			}
			r.State, r.Outcome = p.s, p.o
			o := Row(1000+i, 100)
			o.Source.File, o.Source.Row, o.State, o.Outcome = "other.csv", r.Source.Row, paybatch.StateFinal, paybatch.OutcomeFailed
			m := Row(2000+i, 100)
			m.Source.File, m.Source.Sheet, m.Source.Row, m.State = "two.xlsx", []string{"A", "B"}[i%2], i/2+2, r.State
			rows = append(rows, o, r, m)
		}
		must(j.Ingest(ctx, Seq(rows...), base))
		filters := []journal.Query{
			{States: []paybatch.State{paybatch.StateFinal}, Outcomes: []paybatch.Outcome{paybatch.OutcomeSucceeded}},
			{States: []paybatch.State{paybatch.StateDeclined}},
			{States: []paybatch.State{paybatch.StateFinal}, Outcomes: []paybatch.Outcome{paybatch.OutcomeFailed, paybatch.OutcomeCancelled}},
			{States: []paybatch.State{paybatch.StateRejected, paybatch.StateFailed, paybatch.StateConflict}},
			{States: []paybatch.State{paybatch.StateAccepted, paybatch.StatePending, paybatch.StateSending}},
			{Outcomes: []paybatch.Outcome{paybatch.OutcomePending, ""}},
		}
		// Keyset pages are of one sheet (Query.AfterRow): the two-sheet
		// file is there for its rows at the same source rows.
		check := func(when string) {
			t.Helper()
			const file = "refunds.csv"
			for fi, f := range filters {
				var want []string
				for _, r := range rows {
					if r.Source.File == file && (len(f.States) == 0 || slices.Contains(f.States, r.State)) &&
						(len(f.Outcomes) == 0 || slices.Contains(f.Outcomes, r.Outcome)) {
						want = append(want, r.Key)
					}
				}
				for _, size := range []int{3, 50} {
					var got []string
					after := 0
					for pages := 0; ; pages++ {
						if pages > len(rows) {
							t.Fatalf("%s: filter %d: pages do not end", when, fi)
						}
						q := f
						q.SourceFile, q.AfterRow, q.Limit = file, after, size
						page := must(j.Rows(ctx, q))
						for _, r := range page {
							got = append(got, r.Key)
						}
						if len(page) < size {
							break
						}
						after = page[len(page)-1].Source.Row
					}
					if !slices.Equal(got, want) {
						i := 0
						for i < min(len(got), len(want)) && got[i] == want[i] {
							i++
						}
						t.Errorf("%s: filter %d in pages of %d: %d rows, want %d; first difference at %d: %v, want %v", when, fi, size,
							len(got), len(want), i, got[i:min(len(got), i+3)], want[i:min(len(want), i+3)])
					}
				}
			}
		}
		check("as journaled")
		// Later changes, saved and not flushed: rows leave and enter filters
		// (moves the journal allows: pending and accepted rows go on).
		for i, r := range rows {
			if r.Source.File != "refunds.csv" || i%5 == 0 {
				continue
			}
			switch {
			case r.State == paybatch.StatePending && i%5 == 1:
				r.State, r.Outcome = paybatch.StateFinal, paybatch.OutcomeSucceeded
			case r.State == paybatch.StatePending && i%5 == 2:
				r.State = paybatch.StateAccepted
			case r.State == paybatch.StateAccepted && i%5 == 1:
				r.State, r.Outcome = paybatch.StateFinal, paybatch.OutcomeCancelled
			case r.State == paybatch.StateAccepted && i%5 == 2:
				r.State, r.Outcome = paybatch.StateRejected, ""
			default:
				continue
			}
			r.UpdatedAt = base.Add(time.Minute)
			if err := j.Save(r); err != nil {
				t.Fatal(err)
			}
		}
		check("after changes, unflushed")
		if err := j.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		check("after changes, flushed")
	})
}
