package smarterpay

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	api "github.com/paybatch/paybatch/pipeline/smarterpay"

	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
)

// Monday 19 March 2018, 10:00 London: eleven days before Good Friday.
func mar19(t testing.TB) time.Time { return london(t, 2018, time.March, 19, 10) }

func TestAuth(t *testing.T) {
	e := newEnv(t, mar19(t), nil)
	tests := []struct {
		name   string
		header string
		want   int
		code   string
	}{
		{"no header", "", 401, api.CodeUnauthorized},
		{"unknown token", "Bearer nope", 401, api.CodeUnauthorized},
		{"not bearer", "Basic " + DefaultToken, 401, api.CodeUnauthorized},
		{"expired token", "Bearer " + DefaultExpiredToken, 498, api.CodeTokenExpired},
		{"valid token", "Bearer " + DefaultToken, 200, ""},
		{"scheme is case-insensitive", "bearer " + DefaultToken, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/service.svc/payment", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r := reply{status: resp.StatusCode, header: resp.Header, body: readAll(t, resp)}
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.code != "" {
				if got := r.errBody(t).Code; got != tc.code {
					t.Fatalf("code %q, want %q", got, tc.code)
				}
			}
		})
	}
	if e.ops.Len() != 0 {
		t.Fatal("GETs must not record operations")
	}
}

func TestPaymentRules(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     int
		code     string // error code, or
		status   string // payment status
		amount   string // recorded amount
		date     string // stored collection_date
		field    string // error field
		ctype    string
		mandated string
	}{
		{name: "active mandate, date far enough ahead", body: paymentBody(active, 2532, "2018-04-10", "tx1"),
			want: 201, status: "pending_submission", amount: "2532", date: "2018-04-10"},
		{name: "amount as digit string accepted", body: paymentBody(active, "2532", "2018-04-10", "tx2"),
			want: 201, status: "pending_submission", amount: "2532", date: "2018-04-10"},
		{name: "by auddis only", body: `{"payment":{"auddis":"PBSANDBOX0002","amount":100,"collection_date":"2018-04-10"}}`,
			want: 201, status: "pending_submission", amount: "100", date: "2018-04-10", mandated: "M01SANDBOX000000002"},
		{name: "new_instructions is active", body: paymentBody("M01SANDBOX000000003", 100, "2018-04-10", ""),
			want: 201, status: "pending_submission", amount: "100", date: "2018-04-10"},
		{name: "final_collection is active", body: paymentBody("M01SANDBOX000000004", 100, "2018-04-10", ""),
			want: 201, status: "pending_submission", amount: "100", date: "2018-04-10"},
		{name: "cancelled mandate: recorded cancelled with amount 0", body: paymentBody("M01SANDBOX000000006", 2532, "2018-04-10", "tx3"),
			want: 201, status: "cancelled", amount: "0", date: "2018-04-10"},
		{name: "cancelled by payer: recorded cancelled with amount 0", body: paymentBody("M01SANDBOX000000007", 999, "2018-04-10", ""),
			want: 201, status: "cancelled", amount: "0", date: "2018-04-10"},
		{name: "Good Friday rolls past Easter Monday", body: paymentBody(active, 100, "2018-03-30", ""),
			want: 201, status: "pending_submission", amount: "100", date: "2018-04-03"},
		{name: "Saturday rolls to Monday", body: paymentBody(active, 100, "2018-03-24", ""),
			want: 201, status: "pending_submission", amount: "100", date: "2018-03-26"},
		{name: "fewer than 3 clear banking days: Tue → Fri", body: paymentBody(active, 100, "2018-03-20", ""),
			want: 201, status: "pending_submission", amount: "100", date: "2018-03-23"},
		{name: "today is not a clear day", body: paymentBody(active, 100, "2018-03-19", ""),
			want: 201, status: "pending_submission", amount: "100", date: "2018-03-23"},
		{name: "exactly 3 clear days is kept", body: paymentBody(active, 100, "2018-03-23", ""),
			want: 201, status: "pending_submission", amount: "100", date: "2018-03-23"},
		{name: "date in the past", body: paymentBody(active, 100, "2018-03-18", ""), want: 400, code: api.CodeDateInPast, field: "payment.collection_date"},
		{name: "malformed date", body: paymentBody(active, 100, "2018-3-30", ""), want: 400, code: api.CodeValidation, field: "payment.collection_date"},
		{name: "impossible date", body: paymentBody(active, 100, "2018-02-30", ""), want: 400, code: api.CodeValidation, field: "payment.collection_date"},
		{name: "missing date", body: `{"payment":{"mandate":"` + active + `","amount":100}}`, want: 400, code: api.CodeValidation, field: "payment.collection_date"},
		{name: "decimal amount", body: `{"payment":{"mandate":"` + active + `","amount":25.32,"collection_date":"2018-04-10"}}`, want: 400, code: api.CodeBadRequest},
		{name: "decimal amount string", body: paymentBody(active, "25.32", "2018-04-10", ""), want: 400, code: api.CodeBadRequest},
		{name: "exponent amount", body: `{"payment":{"mandate":"` + active + `","amount":1e3,"collection_date":"2018-04-10"}}`, want: 400, code: api.CodeBadRequest},
		{name: "negative amount", body: paymentBody(active, -5, "2018-04-10", ""), want: 400, code: api.CodeBadRequest},
		{name: "zero amount", body: paymentBody(active, 0, "2018-04-10", ""), want: 400, code: api.CodeValidation, field: "payment.amount"},
		{name: "unknown mandate", body: paymentBody("M01NOPE", 100, "2018-04-10", ""), want: 400, code: api.CodeMandateNotFound, field: "payment.mandate"},
		{name: "mandate on hold", body: paymentBody("M01SANDBOX000000005", 100, "2018-04-10", ""), want: 400, code: api.CodeMandateNotActive, field: "payment.mandate"},
		{name: "mandate and auddis disagree", body: `{"payment":{"mandate":"` + active + `","auddis":"PBSANDBOX0002","amount":100,"collection_date":"2018-04-10"}}`,
			want: 400, code: api.CodeValidation, field: "payment.auddis"},
		{name: "no mandate or auddis", body: `{"payment":{"amount":100,"collection_date":"2018-04-10"}}`, want: 400, code: api.CodeValidation, field: "payment.mandate"},
		{name: "narrative over 18", body: `{"payment":{"mandate":"` + active + `","amount":100,"collection_date":"2018-04-10","default_narrative":"1234567890123456789"}}`,
			want: 400, code: api.CodeValidation, field: "payment.default_narrative"},
		{name: "unknown field", body: `{"payment":{"mandate":"` + active + `","amount":100,"collection_date":"2018-04-10","colour":"red"}}`, want: 400, code: api.CodeBadRequest},
		{name: "no envelope", body: `{"mandate":"` + active + `","amount":100,"collection_date":"2018-04-10"}`, want: 400, code: api.CodeBadRequest},
		{name: "empty object", body: `{}`, want: 400, code: api.CodeBadRequest},
		{name: "not JSON", body: `payment`, want: 400, code: api.CodeBadRequest},
		{name: "trailing data", body: paymentBody(active, 100, "2018-04-10", "") + `{}`, want: 400, code: api.CodeBadRequest},
		{name: "wrong content type", body: paymentBody(active, 100, "2018-04-10", ""), ctype: "text/plain", want: 400, code: api.CodeUnsupportedContent},
		{name: "vnd.api+json accepted", body: paymentBody(active, 100, "2018-04-10", ""), ctype: "application/vnd.api+json",
			want: 201, status: "pending_submission", amount: "100", date: "2018-04-10"},
	}
	e := newEnv(t, mar19(t), nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.ops.Len()
			req, _ := http.NewRequest("POST", e.srv.URL+"/service.svc/payment", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+DefaultToken)
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var r reply
			r.status, r.header = resp.StatusCode, resp.Header
			r.body = readAll(t, resp)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want != 201 {
				b := r.errBody(t)
				if b.Code != tc.code || b.Field != tc.field {
					t.Fatalf("error code/field %q/%q, want %q/%q: %s", b.Code, b.Field, tc.code, tc.field, r.body)
				}
				if e.ops.Len() != before {
					t.Fatal("a refused request recorded an operation")
				}
				return
			}
			p := r.obj(t, "payment")
			if p["status"] != tc.status || p["amount"] != tc.amount || p["collection_date"] != tc.date {
				t.Fatalf("got status %v amount %v date %v, want %s %s %s", p["status"], p["amount"], p["collection_date"], tc.status, tc.amount, tc.date)
			}
			if tc.mandated != "" && p["mandate"] != tc.mandated {
				t.Fatalf("mandate %v, want %s", p["mandate"], tc.mandated)
			}
			if !strings.HasPrefix(p["id"].(string), "P01") || len(p["id"].(string)) != 19 {
				t.Fatalf("id %v: want P01 + 16 characters", p["id"])
			}
			ops := e.ops.All()
			if len(ops) != before+1 {
				t.Fatalf("%d operations recorded, want %d", len(ops), before+1)
			}
			op := ops[len(ops)-1]
			wantAmt := map[string]string{"2532": "25.32", "100": "1.00", "0": "0.00"}[tc.amount]
			if op.Provider != "smarterpay" || op.Operation != "payment" || op.Amount != wantAmt || op.Currency != "GBP" || op.IDs["id"] != p["id"] {
				t.Fatalf("operation %+v does not match payment %v", op, p)
			}
		})
	}
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(sb.String())
}

// A Christmas case: Monday 21 December 2026. Clear days Tue 22, Wed 23,
// Thu 24; Fri 25 (Christmas) and Mon 28 (Boxing Day observed, the 26th is a
// Saturday) are closed, so the earliest collection is Tuesday 29 December.
func TestChristmasRollForward(t *testing.T) {
	e := newEnv(t, london(t, 2026, time.December, 21, 9), nil)
	for _, tc := range []struct{ in, want string }{
		{"2026-12-22", "2026-12-29"},
		{"2026-12-24", "2026-12-29"},
		{"2026-12-25", "2026-12-29"},
		{"2026-12-28", "2026-12-29"},
		{"2026-12-29", "2026-12-29"},
		{"2027-01-01", "2027-01-04"}, // New Year's Day (Friday) → Monday
	} {
		r := e.post(t, "/service.svc/payment", "", paymentBody(active, 100, tc.in, ""))
		if r.status != 201 {
			t.Fatalf("%s: %d %s", tc.in, r.status, r.body)
		}
		if got := r.obj(t, "payment")["collection_date"]; got != tc.want {
			t.Errorf("collection_date %s → %v, want %s", tc.in, got, tc.want)
		}
	}
	// Credits roll a non-banking credit_date forward too.
	r := e.post(t, "/service.svc/credit", "", `{"credit":{"auddis":"PBSANDBOX0001","amount":500,"description":"refund","credit_date":"2026-12-25"}}`)
	if r.status != 201 || r.obj(t, "credit")["credit_date"] != "2026-12-29" {
		t.Fatalf("credit on Christmas Day: %d %s", r.status, r.body)
	}
}

// "Today" is the London date: 23:30 UTC on Sunday 1 July 2018 is already
// 00:30 on Monday 2 July in London (BST).
func TestTodayIsLondonDate(t *testing.T) {
	e := newEnv(t, time.Date(2018, time.July, 1, 23, 30, 0, 0, time.UTC), nil)
	r := e.post(t, "/service.svc/payment", "", paymentBody(active, 100, "2018-07-01", ""))
	if r.status != 400 || r.errBody(t).Code != api.CodeDateInPast {
		t.Fatalf("1 July when London is on 2 July: %d %s", r.status, r.body)
	}
	r = e.post(t, "/service.svc/payment", "", paymentBody(active, 100, "2018-07-02", ""))
	if got := r.obj(t, "payment")["collection_date"]; got != "2018-07-06" {
		t.Fatalf("today Monday 2 July → %v, want Friday 6 July", got)
	}
}

func TestStatusClockAndTriggers(t *testing.T) {
	e := newEnv(t, mar19(t), func(c *SandboxConfig) { c.SubmitAfter, c.SettleAfter = time.Minute, time.Hour })
	type rec struct{ path, id string }
	create := func(res string, pence int) rec {
		var body string
		if res == "payment" {
			body = paymentBody(active, pence, "2018-04-10", fmt.Sprintf("clock-%d", pence))
		} else {
			body = fmt.Sprintf(`{"credit":{"auddis":"PBSANDBOX0001","amount":%d,"description":"payout","credit_date":"2018-04-10","reference":"c-%d"}}`, pence, pence)
		}
		r := e.post(t, "/service.svc/"+res, "", body)
		if r.status != 201 {
			t.Fatalf("create %s: %d %s", res, r.status, r.body)
		}
		return rec{"/service.svc/" + res + "/", r.obj(t, res)["id"].(string)}
	}
	tests := []struct {
		res          string
		pence        int
		final        string
		report, code string
	}{
		{"payment", 2500, "successful", "", ""},
		{"payment", 2551, "failed", "ARUDD", "0"},
		{"payment", 152, "failed", "ARUDD", "1"},
		{"payment", 53, "failed", "ARUDD", "B"},
		{"credit", 700, "successful", "", ""},
		{"credit", 751, "failed", "ARUCS", "5"},
		{"credit", 752, "failed", "ARUCS", "B"},
	}
	recs := make([]rec, len(tests))
	for i, tc := range tests {
		recs[i] = create(tc.res, tc.pence)
	}
	check := func(stage string, want func(i int) string) {
		for i, tc := range tests {
			o := e.get(t, recs[i].path+recs[i].id).obj(t, tc.res)
			if o["status"] != want(i) {
				t.Errorf("%s: %s %d status %v, want %s", stage, tc.res, tc.pence, o["status"], want(i))
			}
			if want(i) == "failed" && (o["bacs_report"] != tc.report || o["bacs_reason_code"] != tc.code || o["bacs_description"] == "") {
				t.Errorf("%s: %s %d Bacs %v %v %v", stage, tc.res, tc.pence, o["bacs_report"], o["bacs_reason_code"], o["bacs_description"])
			}
		}
	}
	check("created", func(int) string { return api.StatusPendingSubmission })
	e.clock.Add(time.Minute)
	check("after SubmitAfter", func(int) string { return api.StatusSubmitted })
	e.clock.Add(time.Hour - time.Second)
	check("just before settling", func(int) string { return api.StatusSubmitted })
	e.clock.Add(time.Second)
	check("settled", func(i int) string { return tests[i].final })
	// The status filter sees the clock too.
	if n := len(e.get(t, "/service.svc/payment?status=failed").json(t)["payments"].([]any)); n != 3 {
		t.Fatalf("%d failed payments listed, want 3", n)
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t, mar19(t), func(c *SandboxConfig) { c.Tokens = []string{DefaultToken, "sp_other_token"} })
	body := paymentBody(active, 2532, "2018-04-10", "idem-1")
	first := e.post(t, "/service.svc/payment", "key-1", body)
	if first.status != 201 || first.header.Get("idempotency-replay") != "" {
		t.Fatalf("first: %d replay=%q", first.status, first.header.Get("idempotency-replay"))
	}
	e.clock.Add(2 * time.Hour) // the status moved on; the replay is still the stored body
	tests := []struct {
		name   string
		token  string
		path   string
		key    string
		body   string
		want   int
		replay bool
		code   string
	}{
		{"same key, same request: replayed", DefaultToken, "/service.svc/payment", "key-1", body, 201, true, ""},
		{"same key, other amount: 422", DefaultToken, "/service.svc/payment", "key-1", paymentBody(active, 2533, "2018-04-10", "idem-1"), 422, false, api.CodeKeyReused},
		{"same key, other endpoint: 422", DefaultToken, "/service.svc/credit", "key-1", body, 422, false, api.CodeKeyReused},
		{"same key, whitespace differs: 422 (payload compared byte for byte)", DefaultToken, "/service.svc/payment", "key-1", body + " ", 422, false, api.CodeKeyReused},
		{"keys are case-sensitive", DefaultToken, "/service.svc/payment", "KEY-1", body, 201, false, ""},
		{"keys are scoped per token", "sp_other_token", "/service.svc/payment", "key-1", body, 201, false, ""},
		{"256-character key refused", DefaultToken, "/service.svc/payment", strings.Repeat("k", 256), body, 400, false, api.CodeBadKey},
		{"key with a character headers may not carry", DefaultToken, "/service.svc/payment", "key\u00e9", body, 400, false, api.CodeBadKey},
		{"UUID key with documented punctuation accepted", DefaultToken, "/service.svc/payment", "8abec541-efca-4efa-856b-50ab8679ec0f:{a}|~^%", body, 201, false, ""},
		{"255-character key accepted", DefaultToken, "/service.svc/payment", strings.Repeat("k", 255), body, 201, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, e.srv.URL, "POST", tc.path, tc.token, tc.key, tc.body)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if got := r.header.Get("idempotency-replay") == "true"; got != tc.replay {
				t.Fatalf("idempotency-replay %v, want %v", got, tc.replay)
			}
			if tc.replay && string(r.body) != string(first.body) {
				t.Fatalf("replayed body differs:\n%s\n%s", r.body, first.body)
			}
			if tc.code != "" {
				b := r.errBody(t)
				if b.Code != tc.code {
					t.Fatalf("code %q, want %q", b.Code, tc.code)
				}
				if tc.want == 422 && b.Message != api.MsgKeyReused {
					t.Fatalf("message %q", b.Message)
				}
			}
		})
	}
	perKey := map[string]int{}
	for _, op := range e.ops.All() {
		perKey[op.IdempotencyKey]++
	}
	if perKey["key-1"] != 2 || perKey["KEY-1"] != 1 { // key-1 once per token
		t.Fatalf("executions per key: %v", perKey)
	}
	if got := e.stats.Get(sim.CountReplayed); got != 1 {
		t.Fatalf("replayed counter %d, want 1", got)
	}

	// Errors are stored: the same invalid request replays its 400.
	bad := paymentBody(active, 100, "2018-01-01", "past")
	r1 := e.post(t, "/service.svc/payment", "key-bad", bad)
	r2 := e.post(t, "/service.svc/payment", "key-bad", bad)
	if r1.status != 400 || r2.status != 400 || r2.header.Get("idempotency-replay") != "true" || string(r1.body) != string(r2.body) {
		t.Fatalf("stored 400: %d %d replay=%q", r1.status, r2.status, r2.header.Get("idempotency-replay"))
	}

	// Kept 24 h, then the key is new again.
	n := e.ops.Len()
	e.clock.Add(22*time.Hour - time.Second) // 24h minus 1s after the first request
	if r := e.post(t, "/service.svc/payment", "key-1", body); r.header.Get("idempotency-replay") != "true" {
		t.Fatal("key forgotten before 24 h")
	}
	e.clock.Add(time.Second)
	r := e.post(t, "/service.svc/payment", "key-1", paymentBody(active, 2532, "2018-04-10", "idem-1"))
	if r.status != 201 || r.header.Get("idempotency-replay") != "" || e.ops.Len() != n+1 {
		t.Fatalf("after 24 h: %d replay=%q ops %d→%d", r.status, r.header.Get("idempotency-replay"), n, e.ops.Len())
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	e := newEnv(t, mar19(t), func(c *SandboxConfig) {
		c.Hold = func(r *http.Request) {
			if r.Header.Get("Idempotency-Key") == "slow" {
				close(entered)
				<-release
			}
		}
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	body := paymentBody(active, 1000, "2018-04-10", "slow-1")
	var wg sync.WaitGroup
	defer func() { unblock(); wg.Wait() }() // never leave the held request blocked when an assertion fails
	var first reply
	wg.Go(func() { first = e.post(t, "/service.svc/payment", "slow", body) })
	<-entered
	second := e.post(t, "/service.svc/payment", "slow", body)
	if second.status != 409 || second.errBody(t).Message != api.MsgKeyInFlight {
		t.Fatalf("in flight: %d %s", second.status, second.body)
	}
	other := e.post(t, "/service.svc/payment", "slow", paymentBody(active, 1001, "2018-04-10", "slow-1"))
	if other.status != 422 {
		t.Fatalf("in flight with another payload: %d, want 422", other.status)
	}
	unblock()
	wg.Wait()
	if first.status != 201 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	third := e.post(t, "/service.svc/payment", "slow", body)
	if third.status != 201 || third.header.Get("idempotency-replay") != "true" || string(third.body) != string(first.body) {
		t.Fatalf("after completion: %d replay=%q", third.status, third.header.Get("idempotency-replay"))
	}
	if e.ops.Len() != 1 {
		t.Fatalf("%d executions, want 1", e.ops.Len())
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, mar19(t), func(c *SandboxConfig) { c.Limit = paybatch.Limit{N: 3, Per: time.Minute} })
	for i := 0; i < 3; i++ {
		if r := e.get(t, "/service.svc/mandate"); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != fmt.Sprint(2-i) {
			t.Fatalf("request %d: %d remaining=%q", i, r.status, r.header.Get("X-RateLimit-Remaining"))
		}
	}
	e.clock.Add(15 * time.Second)
	r := e.post(t, "/service.svc/payment", "rl", paymentBody(active, 100, "2018-04-10", ""))
	if r.status != 429 || r.header.Get("Retry-After") != "45" {
		t.Fatalf("over the limit: %d Retry-After=%q", r.status, r.header.Get("Retry-After"))
	}
	if b := r.errBody(t); b.Message != api.MsgRateLimited || b.Code != api.CodeRateLimited {
		t.Fatalf("429 body %+v", b)
	}
	if e.ops.Len() != 0 || e.stats.Get(sim.CountRateLimited) != 1 {
		t.Fatal("a 429 executed or was not counted")
	}
	// Another token has its own budget.
	e2 := call(t, e.srv.URL, "GET", "/service.svc/mandate", DefaultExpiredToken, "", "")
	if e2.status != 498 {
		t.Fatalf("expired token under a spent budget: %d", e2.status)
	}
	e.clock.Add(45 * time.Second)
	r = e.post(t, "/service.svc/payment", "rl", paymentBody(active, 100, "2018-04-10", ""))
	if r.status != 201 || r.header.Get("idempotency-replay") != "" {
		t.Fatalf("after the window: %d replay=%q (a 429 must not be stored)", r.status, r.header.Get("idempotency-replay"))
	}
}

func TestCreateList(t *testing.T) {
	e := newEnv(t, mar19(t), nil)
	body := `{"payments":[` + strings.TrimSuffix(strings.TrimPrefix(paymentBody(active, 100, "2018-04-10", "L1"), `{"payment":`), "}") + `,` +
		strings.TrimSuffix(strings.TrimPrefix(paymentBody("M01SANDBOX000000006", 200, "2018-03-30", "L2"), `{"payment":`), "}") + `]}`
	r := e.post(t, "/service.svc/payment", "list-1", body)
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	items := r.json(t)["payments"].([]any)
	if len(items) != 2 || items[1].(map[string]any)["status"] != "cancelled" || items[1].(map[string]any)["collection_date"] != "2018-04-03" {
		t.Fatalf("items %v", items)
	}
	again := e.post(t, "/service.svc/payment", "list-1", body)
	if again.header.Get("idempotency-replay") != "true" || string(again.body) != string(r.body) {
		t.Fatal("list not replayed")
	}
	ops := e.ops.All()
	if len(ops) != 2 || ops[0].IdempotencyKey != "list-1#0" || ops[1].IdempotencyKey != "list-1#1" || ops[1].Amount != "0.00" {
		t.Fatalf("ops %+v", ops)
	}
	// One bad item: nothing is created, the error names the item.
	bad := `{"payments":[{"mandate":"` + active + `","amount":100,"collection_date":"2018-04-10"},{"mandate":"` + active + `","amount":0,"collection_date":"2018-04-10"}]}`
	r = e.post(t, "/service.svc/payment", "", bad)
	if r.status != 400 || r.errBody(t).Field != "payments[1].amount" || e.ops.Len() != 2 {
		t.Fatalf("bad list: %d %s ops=%d", r.status, r.body, e.ops.Len())
	}
	for _, b := range []string{`{"payments":[]}`, `{"payment":{},"payments":[{}]}`} {
		if r := e.post(t, "/service.svc/payment", "", b); r.status != 400 {
			t.Fatalf("%s: %d", b, r.status)
		}
	}
	// Credits list.
	r = e.post(t, "/service.svc/credit", "", `{"credits":[{"bank_account":"BANK00000002","amount":300,"description":"a","credit_date":"2018-04-10","reference":"CR1"},{"auddis":"PBSANDBOX0003","amount":400,"description":"b","credit_date":"2018-04-10"}]}`)
	if r.status != 201 || len(r.json(t)["credits"].([]any)) != 2 {
		t.Fatalf("credit list: %d %s", r.status, r.body)
	}
}

func TestCreditRules(t *testing.T) {
	e := newEnv(t, mar19(t), nil)
	tests := []struct {
		name, body string
		want       int
		field      string
		status     string
		amount     string
	}{
		{"by auddis", `{"credit":{"auddis":"PBSANDBOX0001","amount":1234,"description":"payout","credit_date":"2018-04-10","reference":"C-1"}}`, 201, "", "pending_submission", "1234"},
		{"by bank account", `{"credit":{"bank_account":"BANK00000004","amount":1,"description":"payout","credit_date":"2018-04-10"}}`, 201, "", "pending_submission", "1"},
		{"cancelled mandate", `{"credit":{"auddis":"PBSANDBOX0006","amount":1234,"description":"payout","credit_date":"2018-04-10"}}`, 201, "", "cancelled", "0"},
		{"no payee", `{"credit":{"amount":1,"description":"x","credit_date":"2018-04-10"}}`, 400, "credit.auddis", "", ""},
		{"unknown bank account", `{"credit":{"bank_account":"BANK9","amount":1,"description":"x","credit_date":"2018-04-10"}}`, 400, "credit.bank_account", "", ""},
		{"no description", `{"credit":{"auddis":"PBSANDBOX0001","amount":1,"credit_date":"2018-04-10"}}`, 400, "credit.description", "", ""},
		{"description over 100", `{"credit":{"auddis":"PBSANDBOX0001","amount":1,"description":"` + strings.Repeat("d", 101) + `","credit_date":"2018-04-10"}}`, 400, "credit.description", "", ""},
		{"bad rti", `{"credit":{"auddis":"PBSANDBOX0001","amount":1,"description":"x","credit_date":"2018-04-10","rti":"ab"}}`, 400, "credit.rti", "", ""},
		{"past date", `{"credit":{"auddis":"PBSANDBOX0001","amount":1,"description":"x","credit_date":"2018-03-01"}}`, 400, "credit.credit_date", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, "/service.svc/credit", "", tc.body)
			if r.status != tc.want {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.want != 201 {
				if f := r.errBody(t).Field; f != tc.field {
					t.Fatalf("field %q, want %q", f, tc.field)
				}
				return
			}
			c := r.obj(t, "credit")
			if c["status"] != tc.status || c["amount"] != tc.amount {
				t.Fatalf("credit %v", c)
			}
		})
	}
}

func TestListsAndLookups(t *testing.T) {
	e := newEnv(t, mar19(t), nil)
	for i, m := range []string{active, active, "M01SANDBOX000000006"} {
		if r := e.post(t, "/service.svc/payment", "", paymentBody(m, 100+i, "2018-04-10", fmt.Sprintf("ref-%d", i))); r.status != 201 {
			t.Fatal(r.status)
		}
	}
	tests := []struct {
		path string
		want int
		n    int
	}{
		{"/service.svc/payment", 200, 3},
		{"/service.svc/payment?custom_reference=ref-1", 200, 1},
		{"/service.svc/payment?custom_reference=none", 200, 0},
		{"/service.svc/payment?status=cancelled", 200, 1},
		{"/service.svc/payment?status=pending_submission&mandate=" + active, 200, 2},
		{"/service.svc/payment?custom_refrence=ref-1", 400, 0},
		{"/service.svc/mandate", 200, len(DefaultMandates())},
		{"/service.svc/mandate?dd_status=cancelled", 200, 1},
		{"/service.svc/credit", 200, 0},
	}
	for _, tc := range tests {
		r := e.get(t, tc.path)
		if r.status != tc.want {
			t.Fatalf("%s: %d %s", tc.path, r.status, r.body)
		}
		if tc.want != 200 {
			continue
		}
		for _, k := range []string{"payments", "mandates", "credits"} {
			if l, ok := r.json(t)[k]; ok && len(l.([]any)) != tc.n {
				t.Fatalf("%s: %d items, want %d", tc.path, len(l.([]any)), tc.n)
			}
		}
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/service.svc/payment/P01NOPE", 404},
		{"GET", "/service.svc/mandate/" + active, 200},
		{"GET", "/service.svc/bankaccount", 404},
		{"GET", "/other", 404},
		{"DELETE", "/service.svc/payment", 405},
		{"POST", "/service.svc/payment/P01X", 405},
	} {
		if r := call(t, e.srv.URL, tc.method, tc.path, DefaultToken, "", ""); r.status != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, r.status, tc.want)
		}
	}
}

func TestMandateCreateAndReset(t *testing.T) {
	e := newEnv(t, mar19(t), nil)
	r := e.post(t, "/service.svc/mandate", "m-1", `{"mandate":{"customer_bank_account":"BANK00000042","auddis":"NEWREF001"}}`)
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	m := r.obj(t, "mandate")
	if m["dd_status"] != "new_instructions" || m["auddis"] != "NEWREF001" {
		t.Fatalf("mandate %v", m)
	}
	if r := e.post(t, "/service.svc/payment", "", paymentBody(m["id"].(string), 100, "2018-04-10", "")); r.status != 201 {
		t.Fatalf("payment on new mandate: %d", r.status)
	}
	for _, b := range []string{
		`{"mandate":{"customer_bank_account":"B","auddis":"NEWREF001"}}`,           // duplicate
		`{"mandate":{"customer_bank_account":"B","auddis":"AAAAAAAA"}}`,            // one repeated char
		`{"mandate":{"customer_bank_account":"B","auddis":"DDIC12345"}}`,           // DDIC prefix
		`{"mandate":{"customer_bank_account":"B","auddis":"abc123"}}`,              // lower case
		`{"mandate":{"customer_bank_account":"B","auddis":"AB1"}}`,                 // short
		`{"mandate":{"customer_bank_account":"","auddis":"GOODREF1"}}`,             // no account
		`{"mandate":{"customer_bank_account":"B","dd_status":"final_collection"}}`, // not settable
	} {
		if r := e.post(t, "/service.svc/mandate", "", b); r.status != 400 {
			t.Fatalf("%s: %d", b, r.status)
		}
	}
	e.sb.Reset()
	if r := e.get(t, "/service.svc/payment"); len(r.json(t)["payments"].([]any)) != 0 {
		t.Fatal("payments survive Reset")
	}
	if r := e.get(t, "/service.svc/mandate/"+m["id"].(string)); r.status != 404 {
		t.Fatal("created mandate survives Reset")
	}
	if r := e.post(t, "/service.svc/mandate", "m-1", `{"mandate":{"customer_bank_account":"BANK00000042","auddis":"NEWREF001"}}`); r.header.Get("idempotency-replay") != "" {
		t.Fatal("idempotency keys survive Reset")
	}
	if got := e.sb.Fixtures(); len(got) != len(DefaultMandates()) {
		t.Fatalf("fixtures %v", got)
	}
}

// Faults are applied by the combined server around this handler; the
// sandbox must keep its ground truth straight under them.
func TestUnderFaults(t *testing.T) {
	clock := newClock(mar19(t))
	ops := &sim.OpLog{}
	sb := NewSandbox(SandboxConfig{Now: clock.Now, Ops: ops})
	clean := httptest.NewServer(sb)
	defer clean.Close()
	for _, tc := range []struct {
		spec     string
		executed int // executions after the faulted attempt
	}{
		{"lost=1", 1},  // work committed, response dropped
		{"5xx=1", 0},   // refused before the handler: nothing stored
		{"reset=1", 0}, // connection reset before the work
	} {
		t.Run(tc.spec, func(t *testing.T) {
			sb.Reset()
			ops.Reset()
			f, err := sim.ParseFaults(tc.spec, 7)
			if err != nil {
				t.Fatal(err)
			}
			faulty := httptest.NewServer(f.Wrap(sb, nil))
			defer faulty.Close()
			defer f.Close()
			body := paymentBody(active, 4200, "2018-04-10", "fault-"+tc.spec)
			req, _ := http.NewRequest("POST", faulty.URL+"/service.svc/payment", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+DefaultToken)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "fk")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode < 500 {
					t.Fatalf("faulted attempt answered %d", resp.StatusCode)
				}
			}
			if ops.Len() != tc.executed {
				t.Fatalf("after the faulted attempt: %d executions, want %d", ops.Len(), tc.executed)
			}
			r := call(t, clean.URL, "POST", "/service.svc/payment", DefaultToken, "fk", body)
			if r.status != 201 || (r.header.Get("idempotency-replay") == "true") != (tc.executed == 1) {
				t.Fatalf("retry: %d replay=%q", r.status, r.header.Get("idempotency-replay"))
			}
			if ops.Len() != 1 {
				t.Fatalf("%d executions after the retry, want exactly 1", ops.Len())
			}
		})
	}
}

func TestConcurrentCreatesExecuteOnce(t *testing.T) {
	e := newEnv(t, mar19(t), nil)
	body := paymentBody(active, 100, "2018-04-10", "race")
	var wg sync.WaitGroup
	codes := make([]int, 16)
	for i := range codes {
		wg.Go(func() { codes[i] = e.post(t, "/service.svc/payment", "race-key", body).status })
	}
	wg.Wait()
	for _, c := range codes {
		if c != 201 && c != 409 {
			t.Fatalf("status %d", c)
		}
	}
	if e.ops.Len() != 1 {
		t.Fatalf("%d executions for one key", e.ops.Len())
	}
	var p struct{ Payments []json.RawMessage }
	_ = json.Unmarshal(e.get(t, "/service.svc/payment").body, &p)
	if len(p.Payments) != 1 {
		t.Fatalf("%d payments stored", len(p.Payments))
	}
}

func TestMandateCancelCascades(t *testing.T) {
	e := newEnv(t, mar19(t), func(c *SandboxConfig) { c.SubmitAfter, c.SettleAfter = time.Hour, time.Hour })
	submitted := e.post(t, "/service.svc/payment", "", paymentBody(active, 700, "2018-04-10", "early")).obj(t, "payment")["id"].(string)
	e.clock.Add(time.Hour) // the first payment has gone to Bacs
	pending := e.post(t, "/service.svc/payment", "", paymentBody(active, 800, "2018-04-10", "late")).obj(t, "payment")["id"].(string)
	credit := e.post(t, "/service.svc/credit", "", `{"credit":{"auddis":"PBSANDBOX0001","amount":900,"description":"x","credit_date":"2018-04-10"}}`).obj(t, "credit")["id"].(string)
	other := e.post(t, "/service.svc/payment", "", paymentBody("M01SANDBOX000000002", 100, "2018-04-10", "")).obj(t, "payment")["id"].(string)

	put := call(t, e.srv.URL, "PUT", "/service.svc/mandate/"+active, DefaultToken, "cancel-1", `{"mandate":{"dd_status":"cancelled by originator"}}`)
	if put.status != 200 || put.obj(t, "mandate")["dd_status"] != "cancelled by originator" {
		t.Fatalf("PUT: %d %s", put.status, put.body)
	}
	if again := call(t, e.srv.URL, "PUT", "/service.svc/mandate/"+active, DefaultToken, "cancel-1", `{"mandate":{"dd_status":"cancelled by originator"}}`); again.header.Get("idempotency-replay") != "true" {
		t.Fatal("PUT with the same key not replayed")
	}
	for _, tc := range []struct{ path, status, amount string }{
		{"/service.svc/payment/" + submitted, "submitted", "700"},
		{"/service.svc/payment/" + pending, "cancelled", "0"},
		{"/service.svc/credit/" + credit, "cancelled", "0"},
		{"/service.svc/payment/" + other, "pending_submission", "100"},
	} {
		res := strings.Split(tc.path, "/")[2]
		o := e.get(t, tc.path).obj(t, res)
		if o["status"] != tc.status || o["amount"] != tc.amount {
			t.Errorf("%s: %v %v, want %s %s", tc.path, o["status"], o["amount"], tc.status, tc.amount)
		}
	}
	if r := e.post(t, "/service.svc/payment", "", paymentBody(active, 100, "2018-04-10", "")); r.obj(t, "payment")["status"] != "cancelled" {
		t.Fatal("a payment on the now-cancelled mandate was not cancelled")
	}
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/service.svc/mandate/M01NOPE", `{"mandate":{"dd_status":"cancelled"}}`, 404},
		{"/service.svc/mandate/" + active, `{"mandate":{"dd_status":"sideways"}}`, 400},
		{"/service.svc/mandate/" + active, `{"mandate":{"auddis":"NEWONE1"}}`, 400},
		{"/service.svc/payment/" + pending, `{"payment":{}}`, 405},
	} {
		if r := call(t, e.srv.URL, "PUT", tc.path, DefaultToken, "", tc.body); r.status != tc.want {
			t.Errorf("PUT %s %s: %d, want %d", tc.path, tc.body, r.status, tc.want)
		}
	}
}
