package pipeline

import (
	"context"
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
