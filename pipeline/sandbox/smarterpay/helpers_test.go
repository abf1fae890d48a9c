package smarterpay

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/paybatch/paybatch/pipeline/smarterpay"

	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
)

// fakeClock is a settable clock shared by the sandbox and its limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// london builds a wall-clock time in Europe/London.
func london(t testing.TB, y int, m time.Month, d, h int) time.Time {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(y, m, d, h, 0, 0, 0, loc)
}

type env struct {
	srv   *httptest.Server
	sb    *Sandbox
	clock *fakeClock
	ops   *sim.OpLog
	stats *sim.Stats
}

// newEnv starts the sandbox behind a real loopback HTTP server. mod may
// adjust the config before construction.
func newEnv(t testing.TB, now time.Time, mod func(*SandboxConfig)) *env {
	t.Helper()
	e := &env{clock: newClock(now), ops: &sim.OpLog{}, stats: &sim.Stats{}}
	cfg := SandboxConfig{Now: e.clock.Now, Ops: e.ops, Stats: e.stats, SubmitAfter: time.Hour, SettleAfter: 24 * time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	e.sb = NewSandbox(cfg)
	e.srv = httptest.NewServer(e.sb)
	t.Cleanup(e.srv.Close)
	return e
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.body)
	}
	return m
}

// obj returns the envelope's inner object, e.g. obj(t, "payment").
func (r reply) obj(t testing.TB, key string) map[string]any {
	t.Helper()
	m, ok := r.json(t)[key].(map[string]any)
	if !ok {
		t.Fatalf("response has no %q object: %s", key, r.body)
	}
	return m
}

func (r reply) errBody(t testing.TB) api.ErrorBody {
	t.Helper()
	var b api.ErrorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error response is not an ErrorBody: %v: %s", err, r.body)
	}
	if b.Status != r.status {
		t.Fatalf("error body status %d, HTTP status %d", b.Status, r.status)
	}
	return b
}

// call sends one request. token "" sends no Authorization header.
func call(t testing.TB, base, method, path, token, key, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) post(t testing.TB, path, key, body string) reply {
	t.Helper()
	return call(t, e.srv.URL, http.MethodPost, path, DefaultToken, key, body)
}

func (e *env) get(t testing.TB, path string) reply {
	t.Helper()
	return call(t, e.srv.URL, http.MethodGet, path, DefaultToken, "", "")
}

const active = "M01SANDBOX000000001"

func paymentBody(mandate string, amount any, date, ref string) string {
	b, _ := json.Marshal(map[string]any{"payment": map[string]any{
		"mandate": mandate, "amount": amount, "collection_date": date, "custom_reference": ref}})
	return string(b)
}
