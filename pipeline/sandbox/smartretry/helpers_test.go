package smartretry_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/paybatch/paybatch/pipeline/smartretry"

	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	"github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one sandbox over real HTTP.
type env struct {
	t     *testing.T
	url   string
	sb    *smartretry.Sandbox
	ops   *sim.OpLog
	stats *sim.Stats
	clock *clock
	hc    *http.Client
}

// start runs a sandbox on a real loopback listener with cfg (its Now, Ops
// and Stats are filled in) behind the given fault spec.
func start(t *testing.T, cfg smartretry.SandboxConfig, faults string) *env {
	t.Helper()
	e := &env{t: t, ops: &sim.OpLog{}, stats: &sim.Stats{}, clock: newClock()}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	cfg.Ops, cfg.Stats = e.ops, e.stats
	e.sb = smartretry.NewSandbox(cfg)
	f, err := sim.ParseFaults(faults, 1)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.Wrap(e.sb, e.stats))
	t.Cleanup(func() { f.Close(); srv.Close() })
	e.url = srv.URL
	e.hc = &http.Client{Timeout: 20 * time.Second}
	return e
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) problem(t *testing.T) api.Problem {
	t.Helper()
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	return p
}

func (r reply) payment(t *testing.T) api.PaymentResponse {
	t.Helper()
	var p api.PaymentResponse
	if err := json.Unmarshal(r.body, &p); err != nil || r.status != 200 {
		t.Fatalf("want a 200 payment response, got %d %s (%v)", r.status, r.body, err)
	}
	return p
}

// call sends one request. hdr holds extra headers; "x-api-key" defaults to
// the test key unless set (set it to "-" to send none).
func (e *env) call(method, path, body string, hdr map[string]string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("x-api-key", smartretry.TestAPIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "-" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func (e *env) post(op, terminal, body, key string) reply {
	e.t.Helper()
	h := map[string]string{}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return e.call("POST", "/v1/payments/"+op+"/"+terminal, body, h)
}

func (e *env) status(terminal, id string) (reply, api.StatusResponse) {
	e.t.Helper()
	r := e.call("GET", "/v1/payments/status/"+terminal+"/"+id, "", nil)
	var sr api.StatusResponse
	if r.status == 200 {
		dec := json.NewDecoder(strings.NewReader(string(r.body)))
		dec.UseNumber()
		if err := dec.Decode(&sr); err != nil {
			e.t.Fatal(err)
		}
	}
	return r, sr
}

// sale returns the first default fixture sale on ABC123 in USD (120.00).
func usdSale() smartretry.TransactionFixture {
	for _, f := range smartretry.DefaultFixtures() {
		if f.Terminal == "ABC123" && f.Currency == "USD" && f.Type == "sale" {
			return f
		}
	}
	panic("no USD sale fixture")
}

func fixture(terminal, cur, typ string, n int) smartretry.TransactionFixture {
	for _, f := range smartretry.DefaultFixtures() {
		if f.Terminal == terminal && f.Currency == cur && f.Type == typ {
			if n == 0 {
				return f
			}
			n--
		}
	}
	panic("no such fixture")
}

func refundBody(f smartretry.TransactionFixture, mtx, amount string) string {
	b := `{"transaction_reference_id":"` + f.TransactionID + `","order_reference_id":"` + f.OrderID + `"`
	if mtx != "" {
		b += `,"merchant_transaction_id":"` + mtx + `"`
	}
	if amount != "" {
		b += `,"amount":` + amount
	}
	return b + "}"
}
