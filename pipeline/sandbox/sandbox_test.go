package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"

	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
)

func do(t *testing.T, method, url, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func srHeaders(key string) map[string]string {
	h := map[string]string{"x-api-key": srsandbox.TestAPIKey, "Content-Type": "application/json"}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return h
}

// TestCurlScenario is the README's curl walk-through over real HTTP.
func TestCurlScenario(t *testing.T) {
	ts := sandboxtest.NewServer(t, sandbox.Options{
		SmartRetry: srsandbox.SandboxConfig{PaymentsLimit: paybatch.Limit{N: 4, Per: time.Minute}},
	})
	refund := ts.URL + "/v1/payments/refund/ABC123"
	body := `{"transaction_reference_id":"TXS00001","order_reference_id":"ORS00001","merchant_transaction_id":"refund-0001","amount":25.00}`

	s1, h1, b1 := do(t, "POST", refund, body, srHeaders("refund-0001"))
	s2, h2, b2 := do(t, "POST", refund, body, srHeaders("refund-0001"))
	if s1 != 200 || s2 != 200 || b1 != b2 || h1.Get("Idempotency-Replayed") != "false" || h2.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("replay: %d %s / %d %s", s1, b1, s2, b2)
	}
	s3, _, b3 := do(t, "POST", refund, strings.Replace(body, "25.00", "26.00", 1), srHeaders("refund-0001"))
	if s3 != 409 || !strings.Contains(b3, "IDEMPOTENCY_CONFLICT") {
		t.Fatalf("conflict: %d %s", s3, b3)
	}
	s4, _, b4 := do(t, "POST", refund, body, map[string]string{"Content-Type": "application/json"})
	if s4 != 401 || !strings.Contains(b4, "INVALID_API_KEY") {
		t.Fatalf("no key: %d %s", s4, b4)
	}
	var last int
	var lastHdr http.Header
	for i := range 5 {
		last, lastHdr, _ = do(t, "POST", refund, strings.Replace(body, "refund-0001", fmt.Sprintf("refund-%d", i+10), 1), srHeaders(fmt.Sprintf("k-%d", i)))
	}
	if last != 429 || lastHdr.Get("Retry-After") == "" {
		t.Fatalf("limit: %d %v", last, lastHdr)
	}
	// SmarterPay: same key, another amount → 422; no token → 401.
	sp := ts.URL + "/service.svc/payment"
	spH := map[string]string{"Authorization": "Bearer sp_test_token", "Content-Type": "application/json", "Idempotency-Key": "INV-1"}
	pay := `{"payment":{"mandate":"M01SANDBOX000000001","amount":2532,"collection_date":"2030-01-04","custom_reference":"INV-1"}}`
	if s, _, b := do(t, "POST", sp, pay, spH); s != 201 {
		t.Fatalf("smarterpay payment: %d %s", s, b)
	}
	if s, h, _ := do(t, "POST", sp, pay, spH); s != 201 || h.Get("idempotency-replay") != "true" {
		t.Fatalf("smarterpay replay: %d %v", s, h)
	}
	if s, _, b := do(t, "POST", sp, strings.Replace(pay, "2532", "2533", 1), spH); s != 422 {
		t.Fatalf("smarterpay other amount: %d %s", s, b)
	}
	if s, _, _ := do(t, "POST", sp, pay, map[string]string{"Content-Type": "application/json"}); s != 401 {
		t.Fatalf("smarterpay no token: %d", s)
	}

	_, _, opsBody := do(t, "GET", ts.URL+"/_sandbox/operations", "", nil)
	var ops []sim.Operation
	if err := json.Unmarshal([]byte(opsBody), &ops); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, op := range ops {
		count[op.IdempotencyKey]++
	}
	if count["INV-1"] != 1 || ops[len(ops)-1].Provider != "smarterpay" || ops[len(ops)-1].Reference != "INV-1" {
		t.Fatalf("smarterpay operations %s", opsBody)
	}
	if count["refund-0001"] != 1 || ops[0].Provider != "smartretry" || ops[0].Amount != "25.00" || ops[0].Reference != "refund-0001" {
		t.Fatalf("operations %s", opsBody)
	}
	if got := ts.Server.Operations(); len(got) != len(ops) {
		t.Fatalf("Operations() %d vs endpoint %d", len(got), len(ops))
	}
	_, _, statsBody := do(t, "GET", ts.URL+"/_sandbox/stats", "", nil)
	var stats map[string]int64
	json.Unmarshal([]byte(statsBody), &stats)
	if stats["replayed"] != 2 || stats["rate_limited"] != 4 || stats["executed"] != int64(len(ops)) || stats["requests"] < 13 {
		t.Fatalf("stats %s", statsBody)
	}
}

func TestControlEndpoints(t *testing.T) {
	// Faults never touch /_sandbox/ or /health/.
	ts := sandboxtest.NewServer(t, sandbox.Options{Faults: "5xx=1"})
	s, _, b := do(t, "GET", ts.URL+"/_sandbox/fixtures", "", nil)
	var fx sandbox.Fixtures
	if s != 200 || json.Unmarshal([]byte(b), &fx) != nil || len(fx.SmartRetry.Transactions) == 0 {
		t.Fatalf("fixtures: %d %s", s, b)
	}
	if len(fx.SmarterPay.Mandates) == 0 || fx.SmarterPay.Mandates[0].ID == "" {
		t.Fatalf("fixtures lack the SmarterPay mandates: %.300s", b)
	}
	if !strings.Contains(b, `"amount": "120.00"`) || !strings.Contains(b, `"smarterpay"`) {
		t.Fatalf("fixtures body lacks exact string amounts or the smarterpay section: %.300s", b)
	}
	if s, _, _ := do(t, "GET", ts.URL+"/health/live", "", nil); s != 200 {
		t.Fatalf("health faulted: %d", s)
	}
	if s, _, _ := do(t, "POST", ts.URL+"/v1/payments/refund/ABC123", "{}", srHeaders("")); s < 500 {
		t.Fatalf("API not faulted: %d", s)
	}
	if s, h, _ := do(t, "GET", ts.URL+"/_sandbox/reset", "", nil); s != 405 || h.Get("Allow") != "POST" {
		t.Fatalf("GET reset: %d", s)
	}
	if s, _, _ := do(t, "GET", ts.URL+"/_sandbox/nope", "", nil); s != 404 {
		t.Fatalf("unknown control: %d", s)
	}
	_, _, st := do(t, "GET", ts.URL+"/_sandbox/stats", "", nil)
	if !strings.Contains(st, `"faults.5xx": 1`) {
		t.Fatalf("stats %s", st)
	}
	if s, _, _ := do(t, "POST", ts.URL+"/_sandbox/reset", "", nil); s != 200 {
		t.Fatalf("reset: %d", s)
	}
	if got := ts.Server.Stats()["faults.5xx"]; got != 0 {
		t.Fatalf("reset kept stats: %d", got)
	}
}

func TestResetRestoresState(t *testing.T) {
	ts := sandboxtest.NewServer(t, sandbox.Options{})
	refund := ts.URL + "/v1/payments/refund/ABC123"
	full := `{"transaction_reference_id":"TXS00001","order_reference_id":"ORS00001","merchant_transaction_id":"full"}`
	if s, _, b := do(t, "POST", refund, full, srHeaders("full")); s != 200 {
		t.Fatalf("%d %s", s, b)
	}
	if s, _, _ := do(t, "POST", refund, strings.Replace(full, `"full"`, `"again"`, 1), srHeaders("again")); s != 409 {
		t.Fatalf("second full refund: %d", s)
	}
	// Cancel a SmarterPay mandate; reset must bring it back.
	spH := map[string]string{"Authorization": "Bearer sp_test_token", "Content-Type": "application/json"}
	if s, _, b := do(t, "PUT", ts.URL+"/service.svc/mandate/M01SANDBOX000000001", `{"mandate":{"dd_status":"cancelled"}}`, spH); s >= 300 {
		t.Fatalf("cancel mandate: %d %s", s, b)
	}
	if _, _, b := do(t, "GET", ts.URL+"/service.svc/mandate/M01SANDBOX000000001", "", spH); strings.Contains(b, "ongoing_collection") {
		t.Fatalf("mandate not cancelled: %s", b)
	}
	do(t, "POST", ts.URL+"/_sandbox/reset", "", nil)
	if _, _, b := do(t, "GET", ts.URL+"/service.svc/mandate/M01SANDBOX000000001", "", spH); !strings.Contains(b, "ongoing_collection") {
		t.Fatalf("mandate not restored: %s", b)
	}
	if len(ts.Server.Operations()) != 0 {
		t.Fatal("operations kept")
	}
	s, h, _ := do(t, "POST", refund, full, srHeaders("full"))
	if s != 200 || h.Get("Idempotency-Replayed") != "false" {
		t.Fatalf("after reset: %d %v", s, h)
	}
}

func TestLoadFixtures(t *testing.T) {
	good := `{"smartretry":{"transactions":[{"transaction_id":"TXS00001","order_id":"ORS00001","terminal":"ABC123","type":"sale","amount":"120.00","currency":"USD","status":"APPROVED","merchant_transaction_id":"sale-0001"}]}}`
	f, err := sandbox.LoadFixtures(strings.NewReader(good))
	if err != nil || len(f.SmartRetry.Transactions) != 1 {
		t.Fatalf("%v %+v", err, f)
	}
	ts := sandboxtest.NewServer(t, sandbox.Options{Fixtures: f})
	if s, _, b := do(t, "POST", ts.URL+"/v1/payments/refund/ABC123",
		`{"transaction_reference_id":"TXS00002","order_reference_id":"ORS00002"}`, srHeaders("")); s != 404 {
		t.Fatalf("a default fixture exists though the file replaced them: %d %s", s, b)
	}
	bad := map[string]string{
		"not JSON":        `nope`,
		"unknown field":   `{"smartretry":{"transactions":[],"extra":1}}`,
		"float amount":    strings.Replace(good, `"120.00"`, `120.00`, 1),
		"excess decimals": strings.Replace(good, `"120.00"`, `"120.001"`, 1),
		"bad type":        strings.Replace(good, `"sale"`, `"refund"`, 1),
		"short id":        strings.Replace(good, `"TXS00001"`, `"TX1"`, 1),
		"bad mandate":     `{"smarterpay":{"mandates":[{"id":"M1","auddis":"","dd_status":"ongoing_collection","bank_account":"B"}]}}`,
	}
	for name, in := range bad {
		if _, err := sandbox.LoadFixtures(strings.NewReader(in)); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	if _, err := sandbox.New(sandbox.Options{Faults: "boom=1"}); err == nil {
		t.Error("bad faults: want error")
	}
}

func FuzzLoadFixtures(f *testing.F) {
	f.Add(`{"smartretry":{"transactions":[{"transaction_id":"TXS00001","order_id":"ORS00001","terminal":"ABC123","type":"sale","amount":"120.00","currency":"USD"}]}}`)
	f.Add(`{}`)
	f.Add(`{"smarterpay":{"mandates":[]}}`)
	f.Fuzz(func(t *testing.T, in string) {
		fx, err := sandbox.LoadFixtures(strings.NewReader(in))
		if err != nil {
			return
		}
		if _, err := sandbox.New(sandbox.Options{Fixtures: fx}); err != nil {
			t.Fatalf("loaded fixtures refused by New: %v", err)
		}
	})
}
