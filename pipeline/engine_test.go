package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

func TestSubmitAllFinalAndRerunIsNoop(t *testing.T) {
	j := mustJournal(t)
	f := newFake(1)
	f.finalAt = 2
	f.decline["rf-00003"] = true
	ins := refunds(50)
	res, err := Submit(context.Background(), j, f, seq(ins), fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 50 || res.States[paybatch.StateFinal] != 49 || res.States[paybatch.StateDeclined] != 1 {
		t.Fatalf("result = %+v", res)
	}
	if got := res.Verdict(); got != paybatch.ErrExceptions {
		t.Errorf("exit = %v, want exceptions (a decline)", got)
	}
	for mtid, n := range f.execCounts() {
		if n != 1 {
			t.Errorf("%s executed %d times", mtid, n)
		}
	}
	sends := f.sends
	res2, err := Submit(context.Background(), j, f, seq(ins), fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	if f.sends != sends || res2.New != 0 || res2.AlreadyDone != 50 {
		t.Fatalf("re-run sent %d requests, result %+v", f.sends-sends, res2)
	}
	rows, err := j.Rows(context.Background(), journal.Query{MerchantTxID: "rf-00007"})
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	r := rows[0]
	if r.State != paybatch.StateFinal || r.Outcome != paybatch.OutcomeSucceeded || r.ProviderStatus != "APPROVED" ||
		r.Attempts != 1 || r.SentAt.IsZero() || r.Amount.Minor != 107 || r.Key != Key(ins[7]) || r.BodySHA256 == "" {
		t.Errorf("row = %+v", r)
	}
}

func TestSubmitExactlyOnceUnderFakeFaults(t *testing.T) {
	j := mustJournal(t)
	f := newFake(7)
	f.fail, f.lost = 0.2, 0.1
	res, err := Submit(context.Background(), j, f, seq(refunds(300)), fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	if res.States[paybatch.StateFinal] != 300 {
		t.Fatalf("states = %v", res.States)
	}
	if res.Retries == 0 {
		t.Error("no retries under 30% faults")
	}
	ex := f.execCounts()
	if len(ex) != 300 {
		t.Fatalf("%d executed, want 300", len(ex))
	}
	for mtid, n := range ex {
		if n != 1 {
			t.Errorf("%s executed %d times", mtid, n)
		}
	}
}

func TestEditedRowIsConflictNotSent(t *testing.T) {
	j := mustJournal(t)
	f := newFake(1)
	ins := refunds(10)
	if _, err := Submit(context.Background(), j, f, seq(ins), fastConfig()); err != nil {
		t.Fatal(err)
	}
	sends := f.sends
	ins[4].Amount.Minor += 1
	res, err := Submit(context.Background(), j, f, seq(ins), fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	if f.sends != sends {
		t.Errorf("sent %d requests for an edited file", f.sends-sends)
	}
	if len(res.Conflicts) != 1 || res.Conflicts[0].MerchantTxID != "rf-00004" || res.Verdict() != paybatch.ErrExceptions {
		t.Fatalf("conflicts = %+v exit %v", res.Conflicts, res.Verdict())
	}
	cs, err := j.Conflicts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.MerchantTxID == "rf-00004" && c.NewAmount.Minor == 105 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("conflicts table has %d rows", n)
	}
}

func TestAuthStopsRunAndResumes(t *testing.T) {
	j := mustJournal(t)
	f := newFake(1)
	f.auth = true
	ins := refunds(20)
	res, err := Submit(context.Background(), j, f, seq(ins), fastConfig())
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if res.Verdict() != paybatch.ErrResumable {
		t.Errorf("exit %v", res.Verdict())
	}
	f.auth = false
	res, err = Submit(context.Background(), j, f, seq(ins), fastConfig())
	if err != nil || res.States[paybatch.StateFinal] != 20 {
		t.Fatalf("resume: %v %v", err, res.States)
	}
}

func TestRateLimitPausesEveryWorker(t *testing.T) {
	j := mustJournal(t)
	f := newFake(1)
	f.rate429 = 1
	cfg := fastConfig()
	cfg.Concurrency = 8
	start := time.Now()
	res, err := Submit(context.Background(), j, f, seq(refunds(40)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.RateLimited != 1 || res.States[paybatch.StateFinal] != 40 {
		t.Fatalf("res = %+v", res)
	}
	// After the 429 (the first send), nothing may leave for Retry-After.
	f.mu.Lock()
	defer f.mu.Unlock()
	first := f.sentAt[0]
	for _, at := range f.sentAt[1:] {
		if d := at.Sub(first); d > 25*time.Millisecond && d < 290*time.Millisecond { // slack: sends that had passed the gate
			t.Fatalf("a request left %v after the 429 (Retry-After 300ms)", d)
		}
	}
	_ = start
}

type lookingFake struct {
	*fakeProvider
	found *paybatch.Submission
}

func (l lookingFake) Lookup(ctx context.Context, in paybatch.Instruction) (*paybatch.Submission, error) {
	return l.found, nil
}

func TestStaleSendingIsNeverResentBlindly(t *testing.T) {
	ctx := context.Background()
	ins := refunds(3)
	base := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		p          Provider
		wantState  paybatch.State
		wantSends  int
		unresolved int
	}{
		{"no lookup: for a human", newFake(1), paybatch.StateSending, 0, 3},
		{"lookup finds it", lookingFake{newFake(1), &paybatch.Submission{Accepted: true, ProviderID: "P1"}}, paybatch.StateFinal, 0, 0},
		{"lookup finds nothing: sent", lookingFake{newFake(1), nil}, paybatch.StateFinal, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := mustJournal(t)
			cfg := fastConfig()
			cfg.Now = func() time.Time { return base }
			// Journal the rows and mark them sending 25 h ago.
			if err := JournalSending(ctx, j, tc.p, ins, base.Add(-25*time.Hour)); err != nil {
				t.Fatal(err)
			}
			res, err := Submit(ctx, j, tc.p, seq(ins), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var sends int
			switch p := tc.p.(type) {
			case *fakeProvider:
				sends = p.sends
			case lookingFake:
				sends = p.sends
			}
			if sends != tc.wantSends || res.States[tc.wantState] != 3 || res.Unresolved != tc.unresolved {
				t.Fatalf("sends %d, states %v, unresolved %d", sends, res.States, res.Unresolved)
			}
			if tc.unresolved > 0 {
				rows := allRows(t, j)
				if !strings.Contains(rows[0].Problem, "check it by hand") {
					t.Errorf("problem = %q", rows[0].Problem)
				}
				if res.Verdict() != paybatch.ErrResumable {
					t.Errorf("exit %v", res.Verdict())
				}
			}
		})
	}
}

// An interrupt before or while the input is journaled is resumable too:
// nothing was sent, the rows are not finished.
func TestInterruptWhileJournalingIsResumable(t *testing.T) {
	j := mustJournal(t)
	f := newFake(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Submit(ctx, j, f, seq(refunds(100)), fastConfig())
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v", err)
	}
	if res.Verdict() != paybatch.ErrResumable {
		t.Errorf("verdict = %v, want resumable", res.Verdict())
	}
	if f.sends != 0 {
		t.Errorf("%d sends after an interrupt before anything was journaled", f.sends)
	}
}

func TestInterruptLeavesJournalConsistent(t *testing.T) {
	j := mustJournal(t)
	f := newFake(1)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := fastConfig()
	cfg.Pacer = NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 100, Per: time.Second}})
	// Interrupted mid-send, whatever the machine's load: at the 10th send
	// (a 150 ms timer could fire while the input was still being
	// journaled).
	f.onSend = func(n int) {
		if n == 10 {
			cancel()
		}
	}
	ins := refunds(100)
	res, err := Submit(ctx, j, f, seq(ins), cfg)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v", err)
	}
	if res.Verdict() != paybatch.ErrResumable {
		t.Errorf("exit = %v", res.Verdict())
	}
	// Every executed operation is journaled as at least "sending".
	rows := allRows(t, j)
	byMTID := map[string]*journal.Row{}
	for _, r := range rows {
		byMTID[r.MerchantTxID] = r
	}
	execs := f.execCounts()
	for mtid := range execs {
		if st := byMTID[mtid].State; st == paybatch.StatePending {
			t.Errorf("%s executed but journaled %s", mtid, st)
		}
	}
	// Rows whose request never left are not left "sending" (#16 finding 8:
	// after Ctrl-C they showed as sending).
	for mtid, r := range byMTID {
		if r.State == paybatch.StateSending && execs[mtid] == 0 {
			t.Errorf("%s never sent but journaled sending (attempts %d)", mtid, r.Attempts)
		}
	}
	res, err = Submit(context.Background(), j, f, seq(ins), fastConfig())
	if err != nil || res.States[paybatch.StateFinal] != 100 {
		t.Fatalf("resume: %v %v", err, res.States)
	}
	for mtid, n := range f.execCounts() {
		if n != 1 {
			t.Errorf("%s executed %d times", mtid, n)
		}
	}
}
