package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// The provider's X-RateLimit-Remaining/Reset headers close the gate for
// every worker when the budget is spent, before any 429 is provoked.
func TestOnRateClosesTheGateUntilReset(t *testing.T) {
	tests := []struct {
		name      string
		info      paybatch.RateInfo
		wantPause bool
	}{
		{"budget spent, provider stricter than our pacing", paybatch.RateInfo{Known: true, Limit: 100, Remaining: 0}, true},
		{"last request of the window", paybatch.RateInfo{Known: true, Limit: 100, Remaining: 1}, true},
		{"budget left", paybatch.RateInfo{Known: true, Limit: 100, Remaining: 40}, false},
		{"no headers", paybatch.RateInfo{}, false},
		{"provider looser than our pacing: ours already spaces requests", paybatch.RateInfo{Known: true, Limit: 5000, Remaining: 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 1000, Per: time.Second}})
			tt.info.Reset = time.Now().Add(300 * time.Millisecond)
			p.OnRate(tt.info)
			start := time.Now()
			if err := p.gate.wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			waited := time.Since(start)
			if tt.wantPause && waited < 250*time.Millisecond {
				t.Errorf("gate open after %v; want it closed until the reset (~300 ms)", waited)
			}
			if !tt.wantPause && waited > 100*time.Millisecond {
				t.Errorf("gate closed for %v; want it open", waited)
			}
		})
	}
}

// No N+1 departures of a class ever fall within its period plus the jitter
// allowance, however the waiters are scheduled: the log holds the next one
// until the oldest of the last N is old enough.
func TestPacerNeverPutsNPlusOneInAWindow(t *testing.T) {
	p := NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 10, Per: 200 * time.Millisecond}})
	var (
		mu   sync.Mutex
		sent []time.Time
	)
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.wait(context.Background(), p.submit); err != nil {
				t.Error(err)
			}
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(sent, func(a, b time.Time) int { return a.Compare(b) })
	for i := 10; i < len(sent); i++ {
		if d := sent[i].Sub(sent[i-10]); d < 200*time.Millisecond {
			t.Fatalf("departures %d and %d only %v apart: 11 within one 200 ms window", i-10, i, d)
		}
	}
}

// A provider announcing less than the limit in force for a class lowers
// that class and says so once; announcing more changes nothing.
func TestOnRateLowersToTheAnnouncedLimit(t *testing.T) {
	p := NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 300, Per: time.Second},
		Status: paybatch.Limit{N: 500, Per: time.Second}, Overall: paybatch.Limit{N: 1000, Per: time.Second}})
	var notices []string
	p.SetNotify(func(m string) { notices = append(notices, m) })
	p.OnRate(paybatch.RateInfo{Known: true, Limit: 1000, Remaining: 900}) // more than ours: nothing
	p.OnRate(paybatch.RateInfo{Known: true, Limit: 400, Remaining: 300, Query: true})
	for range 3 {
		p.OnRate(paybatch.RateInfo{Known: true, Limit: 100, Remaining: 50})
	}
	got := p.Limits()
	if got.Submit != (paybatch.Limit{N: 100, Per: time.Second}) || got.Status != (paybatch.Limit{N: 400, Per: time.Second}) ||
		got.Overall.N != 1000 {
		t.Errorf("limits %+v; want submit 100/1s, status 400/1s, overall 1000/1s", got)
	}
	if len(notices) != 2 || !strings.Contains(notices[0], "400 status queries") || !strings.Contains(notices[1], "100 payment operations per second") {
		t.Errorf("notices %q; want one per lowered class", notices)
	}
}

// A departure counts in the log from the moment its request was written,
// not from its admission: a worker run late after the pacer let it go
// (a loaded machine) makes the request N departures later wait for its
// real departure, so the two cannot land in one provider window.
func TestPacerLogsTheWriteNotTheAdmission(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	per := 100 * time.Millisecond
	p := NewPacer(paybatch.Limits{Submit: paybatch.Limit{N: 2, Per: per}})
	first, err := p.wait(context.Background(), p.submit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.wait(context.Background(), p.submit); err != nil {
		t.Fatal(err)
	}
	const late = 60 * time.Millisecond
	time.Sleep(late) // the first worker runs late
	req, err := http.NewRequestWithContext(p.trace(context.Background(), &first), http.MethodPost, srv.URL, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	p.mu.Lock()
	due := p.submit.due(p.jitter)
	p.mu.Unlock()
	if min := first.at.Add(late + per); due.Before(min) {
		t.Fatalf("the third departure may leave %v after the first's admission; want at least %v (written %v late)",
			due.Sub(first.at), late+per, late)
	}
}
