package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestPacedHook: Config.Paced is called around each phase whose requests
// are paced at a limit (the send phase at the payment limit, the poll
// phase at the status limit), the function it returns once per call, after
// the phase's last request; never when the phase is unthrottled or paced
// above pacedMax.
func TestPacedHook(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits paybatch.Limits
		want   []string // the phases seen paced
	}{
		{"paced send and poll", paybatch.Limits{Submit: paybatch.Limit{N: 500, Per: time.Second}, Status: paybatch.Limit{N: 500, Per: time.Second}}, []string{"submit", "poll"}},
		{"paced send only", paybatch.Limits{Submit: paybatch.Limit{N: 500, Per: time.Second}}, []string{"submit"}},
		{"unthrottled", paybatch.Limits{}, nil},
		{"above pacedMax", paybatch.Limits{Submit: paybatch.Limit{N: 2 * pacedMax, Per: time.Second}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(1)
			f.finalAt = 2 // the send's answer is not final: every row is polled
			cfg := fastConfig()
			cfg.Pacer = NewPacer(tc.limits)
			var mu sync.Mutex
			var seen []string
			open := 0
			polls := func() (n int) {
				f.mu.Lock()
				defer f.mu.Unlock()
				for _, p := range f.polls {
					n += p
				}
				return n
			}
			sends := func() int {
				f.mu.Lock()
				defer f.mu.Unlock()
				return f.sends
			}
			cfg.Paced = func() func() {
				mu.Lock()
				open++
				mu.Unlock()
				s0, p0 := sends(), polls()
				var once bool
				return func() {
					s, p := sends()-s0, polls()-p0
					mu.Lock()
					defer mu.Unlock()
					if once {
						t.Error("done called twice")
					}
					once = true
					open--
					switch {
					case s == 20 && p == 0:
						seen = append(seen, "submit")
					case s == 0 && p >= 20:
						seen = append(seen, "poll")
					default:
						t.Errorf("a paced phase saw %d sends and %d polls", s, p)
					}
				}
			}
			res, err := Submit(context.Background(), mustJournal(t), f, seq(refunds(20)), cfg)
			if err != nil || res.States[paybatch.StateFinal] != 20 {
				t.Fatalf("%+v %v", res, err)
			}
			if open != 0 {
				t.Errorf("%d paced phases never ended", open)
			}
			if len(seen) != len(tc.want) {
				t.Fatalf("paced phases %v, want %v", seen, tc.want)
			}
			for i := range seen {
				if seen[i] != tc.want[i] {
					t.Errorf("paced phases %v, want %v", seen, tc.want)
				}
			}
		})
	}
}
