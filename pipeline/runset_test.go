package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// refIngest is the sequential reading ingest must agree with: the rule as
// it was written when every row was held in memory.
func refIngest(t *testing.T, p Provider, existing map[string][2]string, ins []paybatch.Instruction) (keys []string, fresh, dups int, cs []journal.Conflict) {
	t.Helper()
	seen := map[string]string{}
	for _, in := range ins {
		key := Key(in)
		req, err := p.Prepare(in)
		if err != nil {
			t.Fatal(err)
		}
		h := bodyHash(req.Body)
		c := journal.Conflict{Key: key, MerchantTxID: in.MerchantTxID, Source: in.Source, NewHash: h, NewAmount: in.Amount}
		if sh, ok := seen[key]; ok {
			if sh == h {
				dups++
			} else {
				c.JournalHash = sh
				cs = append(cs, c)
			}
			continue
		}
		if e, ok := existing[key]; ok && e[0] != h {
			c.JournalHash, c.State = e[0], paybatch.State(e[1])
			cs = append(cs, c)
			continue
		}
		seen[key] = h
		keys = append(keys, key)
		if _, ok := existing[key]; !ok {
			fresh++
		}
	}
	return keys, fresh, dups, cs
}

// TestIngestMatchesSequentialReading: duplicates, edits within the input
// and edits against the journal are classified in the journal (bounded
// memory) exactly as a sequential reader holding everything would. With
// no earlier run, the journal is empty: its first chunk is compared with
// nothing in SQL (the whole input, in one chunk, for seed 7).
func TestIngestMatchesSequentialReading(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	for _, first := range []bool{false, true} {
		for seed := range uint64(8) {
			t.Run(fmt.Sprint(seed, first), func(t *testing.T) { ingestMatchesSequentialReading(ctx, t, now, seed, first) })
		}
	}
}

func ingestMatchesSequentialReading(ctx context.Context, t *testing.T, now time.Time, seed uint64, first bool) {
	rng := rand.New(rand.NewPCG(seed, 7))
	chunk := 1 + int(seed)*3 // duplicates and edits across chunks
	if seed == 7 {
		chunk = 0
	}
	j := mustJournal(t, journal.Options{ChunkRows: chunk})
	f := newFake(seed)
	pool := refunds(15)
	// An earlier run journaled some of them, some finished since.
	var earlier []paybatch.Instruction
	for _, in := range pool {
		if rng.IntN(2) == 0 && !first {
			in.Amount.Minor += int64(rng.IntN(2))
			earlier = append(earlier, in)
		}
	}
	if _, err := j.Ingest(ctx, rowsOf(ctx, f, seq(earlier), now, new(paybatch.Provider)), now); err != nil {
		t.Fatal(err)
	}
	edit(t, j, func(r *journal.Row) bool {
		r.State = paybatch.StateFinal
		return r.MerchantTxID < "rf-00005"
	})
	existing := map[string][2]string{}
	rows := allRows(t, j)
	for _, r := range rows {
		existing[r.Key] = [2]string{r.BodySHA256, string(r.State)}
	}
	// This run: 60 rows drawn from the pool, repeated and edited.
	var ins []paybatch.Instruction
	for i := range 60 {
		in := pool[rng.IntN(len(pool))]
		in.Amount.Minor += int64(rng.IntN(2))
		in.Source.Row = i + 2
		ins = append(ins, in)
	}
	wantKeys, wantFresh, wantDups, wantConflicts := refIngest(t, f, existing, ins)

	res, err := j.Ingest(ctx, rowsOf(ctx, f, seq(ins), now, new(paybatch.Provider)), now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != len(wantKeys) || res.New != wantFresh || res.Duplicates != wantDups || res.ConflictCount != len(wantConflicts) {
		t.Fatalf("rows %d new %d dups %d conflicts %d; want %d %d %d %d", res.Rows, res.New, res.Duplicates, res.ConflictCount,
			len(wantKeys), wantFresh, wantDups, len(wantConflicts))
	}
	if !reflect.DeepEqual(res.Conflicts, wantConflicts) {
		t.Fatalf("conflicts\n got %+v\nwant %+v", res.Conflicts, wantConflicts)
	}
	// The run set holds exactly the run's keys.
	var gotKeys []string
	for page, err := range j.Pages(ctx, journal.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			gotKeys = append(gotKeys, r.Key)
		}
	}
	slices.Sort(gotKeys)
	wantKeys = slices.Sorted(slices.Values(wantKeys))
	if !reflect.DeepEqual(gotKeys, wantKeys) {
		t.Fatalf("run rows\n got %v\nwant %v", gotKeys, wantKeys)
	}
	// Each distinct edit is recorded once in the conflicts table.
	distinct := map[[2]string]bool{}
	for _, c := range wantConflicts {
		distinct[[2]string{c.Key, c.NewHash}] = true
	}
	recorded, err := j.Conflicts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(recorded); n != len(distinct) {
		t.Errorf("conflicts recorded %d, want %d", n, len(distinct))
	}
	if total := len(allRows(t, j)); total != len(existing)+wantFresh {
		t.Errorf("journal has %d rows, want %d", total, len(existing)+wantFresh)
	}
}

// TestPagedSendAndPoll: with pages of 7 rows, faults and several polling
// rounds, every row is executed once, polled to final, and counted once.
func TestPagedSendAndPoll(t *testing.T) {
	j := mustJournal(t, journal.Options{PageRows: 7})
	f := newFake(3)
	f.fail, f.lost, f.finalAt = 0.2, 0.1, 3
	ins := refunds(101)
	res, err := Submit(context.Background(), j, f, seq(append(ins, ins[:10]...)), fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 101 || res.Duplicates != 10 || res.States[paybatch.StateFinal] != 101 {
		t.Fatalf("rows %d dups %d states %v", res.Rows, res.Duplicates, res.States)
	}
	var sum int64
	for _, in := range ins {
		sum += in.Amount.Minor
	}
	if got := res.Totals[paybatch.StateFinal]["USD"].Minor; got != sum {
		t.Errorf("final total %d, want %d", got, sum)
	}
	for mtid, n := range f.execCounts() {
		if n != 1 {
			t.Errorf("%s executed %d times", mtid, n)
		}
	}
	if len(f.execCounts()) != 101 {
		t.Errorf("%d executed", len(f.execCounts()))
	}
	polls := 1 << 30
	for _, r := range allRows(t, j) {
		polls = min(polls, r.Polls)
	}
	if polls < 3 {
		t.Errorf("polls recorded %d, want ≥ 3 (finalAt)", polls)
	}
	// Re-running is a no-op.
	sends := f.sends
	res, err = Submit(context.Background(), j, f, seq(ins), fastConfig())
	if err != nil || f.sends != sends || res.AlreadyDone != 101 || res.New != 0 {
		t.Fatalf("re-run: %v sends %d already %d new %d", err, f.sends-sends, res.AlreadyDone, res.New)
	}
}

// TestFailedInputJournalsNothing: an input that fails after several chunks
// were compared and committed leaves the journal as it was.
func TestFailedInputJournalsNothing(t *testing.T) {
	ctx := context.Background()
	j := mustJournal(t, journal.Options{ChunkRows: 4})
	f := newFake(1)
	ins := refunds(30)
	if _, err := Submit(ctx, j, f, seq(ins[:5]), fastConfig()); err != nil {
		t.Fatal(err)
	}
	bad := func(yield func(paybatch.Instruction, error) bool) {
		for i, in := range ins {
			if i == 17 {
				yield(paybatch.Instruction{}, fmt.Errorf("row 19: the file changed since it was validated"))
				return
			}
			if !yield(in, nil) {
				return
			}
		}
	}
	sends := f.sends
	if _, err := Submit(ctx, j, f, bad, fastConfig()); err == nil {
		t.Fatal("no error")
	}
	if n := len(allRows(t, j)); n != 5 || f.sends != sends {
		t.Fatalf("journal has %d rows (want the 5 of the first run), %d sent", n, f.sends-sends)
	}
}
