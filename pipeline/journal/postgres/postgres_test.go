package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

func open(t testing.TB, url string) *postgres.Journal {
	t.Helper()
	j, err := postgres.Open(context.Background(), url, postgres.Options{PageRows: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func row(i int, amount int64) *journal.Row {
	return &journal.Row{Key: fmt.Sprintf("k%04d", i), Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Account: "ABC123",
		MerchantTxID: fmt.Sprintf("rf-%04d", i), Amount: paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: amount},
		BodySHA256: fmt.Sprintf("h%d-%d", i, amount), State: paybatch.StatePending, Source: paybatch.Source{File: "in.csv", Row: i + 2},
		CreatedAt: t0, UpdatedAt: t0, Method: "POST", Path: "/refunds", Body: []byte(fmt.Sprintf(`{"amount":%d}`, amount))}
}

func seq(rows ...*journal.Row) iter.Seq2[*journal.Row, error] {
	return func(yield func(*journal.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func TestIngestSaveTally(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	j := open(t, url)
	var in []*journal.Row
	for i := range 20 {
		in = append(in, row(i, 1000+int64(i)))
	}
	in = append(in, row(3, 1003)) // duplicate
	in = append(in, row(4, 9999)) // conflict within the input
	got, err := j.Ingest(ctx, seq(in...), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != 20 || got.New != 20 || got.Duplicates != 1 || got.ConflictCount != 1 {
		t.Fatalf("ingested %+v", got)
	}
	// A row edited after it was journaled is a conflict, in a later run too.
	got, err = j.Ingest(ctx, seq(row(5, 1005), row(6, 7777)), t0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != 1 || got.New != 0 || got.ConflictCount != 1 || got.Conflicts[0].State != paybatch.StatePending || got.Conflicts[0].JournalHash != "h6-1006" {
		t.Fatalf("ingested %+v", got)
	}
	if got, err = j.Ingest(ctx, seq(in...), t0); err != nil || got.Rows != 20 || got.New != 0 {
		t.Fatalf("re-ingest %+v %v", got, err)
	}
	// Pages in input order, 7 at a time.
	var keys []string
	pages := 0
	for page, err := range j.Pages(ctx, journal.Filter{States: []paybatch.State{paybatch.StatePending}}) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range page {
			keys = append(keys, r.Key)
			if r.Amount.Currency.Code() != "USD" || r.CreatedAt != t0 || string(r.Body) == "" {
				t.Fatalf("row read back %+v", r)
			}
		}
	}
	if len(keys) != 20 || pages != 3 || keys[0] != "k0000" || keys[19] != "k0019" {
		t.Fatalf("pages %d keys %v", pages, keys)
	}
	// Intent, then the answer; then a late, older write is refused.
	r := row(0, 1000)
	r.State, r.Attempts, r.SentAt = paybatch.StateSending, 1, t0
	if err := j.Save(r); err != nil {
		t.Fatal(err)
	}
	r.State, r.ProviderID = paybatch.StateAccepted, "P1"
	if err := j.SaveLater(r); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	late := row(0, 1000)
	late.State = paybatch.StateSending
	if err := j.Save(late); !errors.Is(err, postgres.ErrStateBackwards) {
		t.Fatalf("save going backwards: %v", err)
	}
	n, err := j.Count(ctx, journal.Filter{States: []paybatch.State{paybatch.StateAccepted}})
	if err != nil || n != 1 {
		t.Fatalf("accepted %d %v", n, err)
	}
	tally, err := j.Tally(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tally.States[paybatch.StatePending] != 19 || tally.States[paybatch.StateAccepted] != 1 ||
		tally.Totals[paybatch.StateAccepted]["USD"].Minor != 1000 {
		t.Fatalf("tally %+v", tally)
	}
	if n, err := j.SelectAccepted(ctx, ""); err != nil || n != 1 {
		t.Fatalf("select accepted %d %v", n, err)
	}
	// A second process sees it all.
	j2 := open(t, url)
	rows, err := j2.Rows(ctx, journal.Query{States: []paybatch.State{paybatch.StateAccepted}})
	if err != nil || len(rows) != 1 || rows[0].ProviderID != "P1" || rows[0].SentAt != t0 {
		t.Fatalf("rows %+v %v", rows, err)
	}
	cs, err := j2.Conflicts(ctx)
	if err != nil || len(cs) != 2 {
		t.Fatalf("conflicts %+v %v", cs, err)
	}
}

// A src error takes back everything the input journaled.
func TestIngestSourceError(t *testing.T) {
	ctx := context.Background()
	j := open(t, pgtest.URL(t))
	boom := errors.New("boom")
	src := func(yield func(*journal.Row, error) bool) {
		for i := range 12000 {
			if !yield(row(i, 100), nil) {
				return
			}
		}
		yield(nil, boom)
	}
	if _, err := j.Ingest(ctx, src, t0); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	cs, err := j.Counts(ctx)
	if err != nil || len(cs) != 0 {
		t.Fatalf("counts after a failed input %+v %v", cs, err)
	}
}

// Processes opening a new journal at once apply each migration once.
func TestOpenConcurrently(t *testing.T) {
	url := pgtest.URL(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := postgres.Open(context.Background(), url, postgres.Options{})
			if err == nil {
				err = j.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRejectsMasked(t *testing.T) {
	ctx := context.Background()
	j := open(t, pgtest.URL(t))
	rj := journal.Reject{Source: paybatch.Source{File: "in.csv", Row: 4}, Column: "amount", Value: "4111111111111111", Reason: "bad"}
	if err := j.RecordRejects(ctx, []journal.Reject{rj, rj}); err != nil {
		t.Fatal(err)
	}
	got, err := j.Rejects(ctx)
	if err != nil || len(got) != 1 || got[0].Value == rj.Value {
		t.Fatalf("rejects %+v %v", got, err)
	}
}
