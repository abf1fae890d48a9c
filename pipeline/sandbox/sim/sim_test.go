package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
)

func TestOpLogConcurrentRecordAll(t *testing.T) {
	var log sim.OpLog
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			ids := map[string]string{"transaction_id": fmt.Sprintf("TX%06d", i)}
			log.Record(sim.Operation{Provider: "smartretry", Operation: "refund", Amount: "1.00", Currency: "USD", IDs: ids})
			ids["transaction_id"] = "mutated" // Record must have copied
		})
	}
	wg.Wait()
	all := log.All()
	if len(all) != 50 || log.Len() != 50 {
		t.Fatalf("got %d ops, want 50", len(all))
	}
	for _, op := range all {
		if !strings.HasPrefix(op.IDs["transaction_id"], "TX") {
			t.Fatalf("IDs not copied on Record: %v", op.IDs)
		}
	}
	all[0].IDs["transaction_id"] = "x"
	if log.All()[0].IDs["transaction_id"] == "x" {
		t.Fatal("All must return copies")
	}
	log.Reset()
	if len(log.All()) != 0 {
		t.Fatal("Reset left operations")
	}
}

func TestStats(t *testing.T) {
	var s sim.Stats
	s.Inc(sim.CountRequests)
	s.Inc(sim.CountRequests)
	s.Inc("custom")
	snap := s.Snapshot()
	if snap[sim.CountRequests] != 2 || snap["custom"] != 1 {
		t.Fatalf("snapshot %v", snap)
	}
	if _, ok := snap[sim.CountFaultHang]; !ok {
		t.Fatal("well-known counters must be present")
	}
	s.Reset()
	if s.Snapshot()[sim.CountRequests] != 0 {
		t.Fatal("Reset kept counts")
	}
}

func TestLimiterFixedWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l := sim.NewLimiter(paybatch.Limit{N: 3, Per: time.Second}, clock)
	start := now
	for i := range 3 {
		ok, rem, reset := l.Take("k")
		if !ok || rem != 2-i || !reset.Equal(start.Add(time.Second)) {
			t.Fatalf("take %d: ok=%v rem=%d reset=%v", i, ok, rem, reset)
		}
	}
	now = now.Add(999 * time.Millisecond)
	if ok, rem, reset := l.Take("k"); ok || rem != 0 || !reset.Equal(start.Add(time.Second)) {
		t.Fatalf("4th in window: ok=%v rem=%d reset=%v", ok, rem, reset)
	}
	if ok, _, _ := l.Take("other"); !ok {
		t.Fatal("keys must have separate budgets")
	}
	now = start.Add(time.Second)
	ok, rem, reset := l.Take("k")
	if !ok || rem != 2 || !reset.Equal(now.Add(time.Second)) {
		t.Fatalf("new window: ok=%v rem=%d reset=%v", ok, rem, reset)
	}
	l.Reset()
	if ok, rem, _ := l.Take("k"); !ok || rem != 2 {
		t.Fatalf("after Reset: ok=%v rem=%d", ok, rem)
	}
	unl := sim.NewLimiter(paybatch.Limit{}, clock)
	for range 1000 {
		if ok, _, _ := unl.Take("k"); !ok {
			t.Fatal("limit 0 must be unlimited")
		}
	}
}

func TestParseFaultsErrors(t *testing.T) {
	good := []string{"", "5xx=0.1,reset=0.05,lost=0.02,latency=20ms±10ms,hang=0.01",
		"latency=20ms+-10ms", "latency=5ms", "5xx=1", "hang=0.5,hangmax=2s", " 5xx = 0.2 , "}
	for _, s := range good {
		if _, err := sim.ParseFaults(s, 1); err != nil {
			t.Errorf("ParseFaults(%q): %v", s, err)
		}
	}
	bad := []string{"5xx", "5xx=2", "5xx=-0.1", "5xx=x", "boom=0.1", "latency=fast",
		"latency=10ms±20ms", "latency=-1ms", "5xx=0.6,lost=0.6", "hangmax=0", "hangmax=x"}
	for _, s := range bad {
		if _, err := sim.ParseFaults(s, 1); err == nil {
			t.Errorf("ParseFaults(%q): want error", s)
		}
	}
}

func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{"5xx=0.1,reset=0.05,lost=0.02,latency=20ms±10ms,hang=0.01", "latency=1s+-1s", "", "a=b,,c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := sim.ParseFaults(s, 7)
		if err == nil && fl == nil {
			t.Fatal("nil Faults without error")
		}
	})
}

// faultServer runs a counting handler behind faults over real HTTP.
func faultServer(t *testing.T, spec string, seed int64) (*httptest.Server, *atomic.Int64, *sim.Stats) {
	t.Helper()
	f, err := sim.ParseFaults(spec, seed)
	if err != nil {
		t.Fatal(err)
	}
	var ran atomic.Int64
	stats := &sim.Stats{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Add(1)
		io.WriteString(w, "ok")
	})
	srv := httptest.NewServer(f.Wrap(h, stats))
	t.Cleanup(func() { f.Close(); srv.Close() })
	return srv, &ran, stats
}

func TestFaultKinds(t *testing.T) {
	tests := []struct {
		name      string
		spec      string
		wantRan   int64
		wantCount string
		check     func(t *testing.T, resp *http.Response, err error)
	}{
		{"5xx answers without running the handler", "5xx=1", 0, sim.CountFault5xx, func(t *testing.T, resp *http.Response, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode < 500 || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}},
		{"reset drops before the handler", "reset=1", 0, sim.CountFaultReset, func(t *testing.T, resp *http.Response, err error) {
			if err == nil {
				t.Fatalf("want transport error, got %d", resp.StatusCode)
			}
		}},
		{"lost runs the handler then drops", "lost=1", 1, sim.CountFaultLost, func(t *testing.T, resp *http.Response, err error) {
			if err == nil {
				t.Fatalf("want transport error, got %d", resp.StatusCode)
			}
		}},
		{"hang holds until the client gives up", "hang=1", 0, sim.CountFaultHang, func(t *testing.T, resp *http.Response, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want client deadline, got %v", err)
			}
		}},
		{"latency delays then runs", "latency=30ms", 1, sim.CountFaultLatency, func(t *testing.T, resp *http.Response, err error) {
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("got %v %v", resp, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, ran, stats := faultServer(t, tt.spec, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/payments/refund/ABC123", strings.NewReader(`{}`))
			start := time.Now()
			// A fresh transport each time: no retry of the request on a reused conn.
			cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := cl.Do(req)
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			tt.check(t, resp, err)
			if tt.name[:7] == "latency" && time.Since(start) < 30*time.Millisecond {
				t.Fatal("latency not applied")
			}
			if got := ran.Load(); got != tt.wantRan {
				t.Fatalf("handler ran %d times, want %d", got, tt.wantRan)
			}
			if got := stats.Get(tt.wantCount); got != 1 {
				t.Fatalf("%s = %d, want 1", tt.wantCount, got)
			}
			// Control and health paths are never faulted.
			for _, p := range []string{"/_sandbox/stats", "/health/live"} {
				resp, err := cl.Get(srv.URL + p)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("%s faulted: %v", p, err)
				}
				resp.Body.Close()
			}
		})
	}
}

func TestFaultsDeterministicPerSeed(t *testing.T) {
	run := func(seed int64) string {
		srv, _, _ := faultServer(t, "5xx=0.3,reset=0.2", seed)
		cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		var b strings.Builder
		for range 40 {
			resp, err := cl.Post(srv.URL+"/v1/x", "application/json", strings.NewReader("{}"))
			switch {
			case err != nil:
				b.WriteString("R")
			default:
				fmt.Fprintf(&b, "%d,", resp.StatusCode)
				resp.Body.Close()
			}
		}
		return b.String()
	}
	a, b, c := run(42), run(42), run(43)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if a == c {
		t.Fatalf("different seeds gave identical sequences %s", a)
	}
	if !strings.Contains(a, "R") || !strings.Contains(a, "200") || !strings.Contains(a, "50") {
		t.Fatalf("sequence lacks a mix of outcomes: %s", a)
	}
}

func TestFaultsCloseReleasesHang(t *testing.T) {
	f, _ := sim.ParseFaults("hang=1", 1)
	srv := httptest.NewServer(f.Wrap(http.NotFoundHandler(), nil))
	defer srv.Close()
	go func() { time.Sleep(50 * time.Millisecond); f.Close() }()
	start := time.Now()
	_, err := http.Get(srv.URL + "/v1/x")
	if err == nil {
		t.Fatal("want a dropped connection")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Close did not release the hang")
	}
}
