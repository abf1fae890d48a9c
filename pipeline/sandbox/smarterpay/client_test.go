package smarterpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/paybatch/paybatch/pipeline/smarterpay"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
)

var update = flag.Bool("update", false, "rewrite golden files")

func gbp(t testing.TB, s string) paybatch.Money {
	t.Helper()
	m, err := paybatch.ParseMoney(s, paybatch.MustCurrency("GBP"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func day(s string) time.Time {
	d, err := api.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func newClient(t testing.TB, base, token string, onRate func(paybatch.RateInfo)) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.ClientConfig{BaseURL: base + api.BasePath, Token: token, OnRate: onRate})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payIn(t testing.TB, ref, amount, date string) paybatch.Instruction {
	return paybatch.Instruction{Kind: paybatch.KindDDPayment, Provider: paybatch.SmarterPay, MerchantTxID: ref,
		Amount: gbp(t, amount), Mandate: active, CollectionDate: day(date), Description: "Invoice " + ref}
}

func TestClientAgainstSandbox(t *testing.T) {
	e := newEnv(t, mar19(t), func(c *SandboxConfig) { c.SubmitAfter, c.SettleAfter = time.Minute, time.Hour })
	var rateMu sync.Mutex
	var rate paybatch.RateInfo
	c := newClient(t, e.srv.URL, DefaultToken, func(r paybatch.RateInfo) { rateMu.Lock(); rate = r; rateMu.Unlock() })
	ctx := context.Background()

	in := payIn(t, "INV-1", "25.32", "2018-03-30") // Good Friday
	req, err := c.Prepare(in)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Send(ctx, req, "k-INV-1")
	if err != nil {
		t.Fatal(err)
	}
	if sub.HTTPStatus != 201 || !sub.Accepted || sub.Replayed || !strings.HasPrefix(sub.ProviderID, "P01") ||
		sub.Amount == nil || *sub.Amount != gbp(t, "25.32") || !sub.Date.Equal(day("2018-04-03")) ||
		sub.Status == nil || sub.Status.Outcome != paybatch.OutcomePending || sub.Status.Raw != api.StatusPendingSubmission {
		t.Fatalf("submission %+v status %+v", sub, sub.Status)
	}
	rateMu.Lock()
	if !rate.Known || rate.Limit != api.Limits().Overall.N || rate.Remaining != api.Limits().Overall.N-1 || rate.Reset.IsZero() {
		t.Errorf("rate info %+v", rate)
	}
	rateMu.Unlock()
	again, err := c.Send(ctx, req, "k-INV-1")
	if err != nil || !again.Replayed || again.ProviderID != sub.ProviderID {
		t.Fatalf("replay: %+v %v", again, err)
	}

	// Status follows the clock; failures carry the Bacs reason code.
	failIn := payIn(t, "INV-2", "10.51", "2018-04-10")
	freq, _ := c.Prepare(failIn)
	fsub, err := c.Send(ctx, freq, "k-INV-2")
	if err != nil {
		t.Fatal(err)
	}
	ref := paybatch.ProviderRef{Kind: paybatch.KindDDPayment, ID: fsub.ProviderID}
	st, err := c.Status(ctx, ref)
	if err != nil || st.Outcome != paybatch.OutcomePending || st.Raw != api.StatusPendingSubmission {
		t.Fatalf("status %+v %v", st, err)
	}
	e.clock.Add(time.Minute)
	if st, _ = c.Status(ctx, ref); st.Outcome != paybatch.OutcomePending || st.Raw != api.StatusSubmitted {
		t.Fatalf("status %+v", st)
	}
	e.clock.Add(time.Hour)
	st, _ = c.Status(ctx, ref)
	if st.Outcome != paybatch.OutcomeFailed || st.ReasonCode != "ARUDD 0" || st.Domain != "ARUDD" || st.Detail != "Refer to payer" || !st.Date.Equal(day("2018-04-10")) ||
		st.Amount == nil || *st.Amount != gbp(t, "10.51") {
		t.Fatalf("failed status %+v", st)
	}
	if st, _ = c.Status(ctx, paybatch.ProviderRef{Kind: paybatch.KindDDPayment, ID: sub.ProviderID}); st.Outcome != paybatch.OutcomeSucceeded {
		t.Fatalf("status %+v", st)
	}

	// Cancelled mandate: accepted, recorded cancelled with amount 0.
	cin := payIn(t, "INV-3", "5.00", "2018-04-10")
	cin.Mandate = "M01SANDBOX000000006"
	creq, _ := c.Prepare(cin)
	csub, err := c.Send(ctx, creq, "k-INV-3")
	if err != nil || csub.Status.Outcome != paybatch.OutcomeCancelled || csub.Amount.Minor != 0 {
		t.Fatalf("cancelled mandate: %+v %v", csub, err)
	}

	// Credits.
	crIn := paybatch.Instruction{Kind: paybatch.KindDDCredit, MerchantTxID: "PAY-1", Amount: gbp(t, "12.00"), Auddis: "PBSANDBOX0002",
		CollectionDate: day("2018-03-31"), Description: "payout"}
	crReq, _ := c.Prepare(crIn)
	crSub, err := c.Send(ctx, crReq, "k-PAY-1")
	if err != nil || !strings.HasPrefix(crSub.ProviderID, "C01") || !crSub.Date.Equal(day("2018-04-03")) {
		t.Fatalf("credit: %+v %v", crSub, err)
	}
	if st, err := c.Status(ctx, paybatch.ProviderRef{Kind: paybatch.KindDDCredit, ID: crSub.ProviderID}); err != nil || st.Outcome != paybatch.OutcomePending {
		t.Fatalf("credit status %+v %v", st, err)
	}

	// Lookup by reference.
	got, err := c.Lookup(ctx, in)
	if err != nil || got == nil || got.ProviderID != sub.ProviderID || !got.Date.Equal(day("2018-04-03")) {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if got, err := c.Lookup(ctx, crIn); err != nil || got == nil || got.ProviderID != crSub.ProviderID {
		t.Fatalf("credit lookup: %+v %v", got, err)
	}
	if got, err := c.Lookup(ctx, payIn(t, "NEVER-SENT", "1.00", "2018-04-10")); err != nil || got != nil {
		t.Fatalf("lookup of an unsent row: %+v %v", got, err)
	}
	dup, _ := c.Prepare(in)
	if _, err := c.Send(ctx, dup, "another-key"); err != nil { // same reference, other key: a second payment
		t.Fatal(err)
	}
	var pe *paybatch.ProviderError
	if _, err := c.Lookup(ctx, in); !errors.As(err, &pe) || pe.Class != paybatch.ClassConflict {
		t.Fatalf("two payments share a reference: %v", err)
	}
}

func TestClientErrorClasses(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	e := newEnv(t, mar19(t), func(c *SandboxConfig) {
		c.Limit = paybatch.Limit{N: 1000, Per: time.Minute}
		c.Tokens = []string{DefaultToken, "sp_tiny_budget"}
		c.Hold = func(r *http.Request) {
			if r.Header.Get("Idempotency-Key") == "held" {
				close(entered)
				<-release
			}
		}
	})
	defer unblock()
	ctx := context.Background()
	c := newClient(t, e.srv.URL, DefaultToken, nil)
	prep := func(in paybatch.Instruction) paybatch.Request {
		r, err := c.Prepare(in)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	good := prep(payIn(t, "E-1", "1.00", "2018-04-10"))
	if _, err := c.Send(ctx, good, "used"); err != nil {
		t.Fatal(err)
	}
	// Hold one request in flight for the 409 case.
	var wg sync.WaitGroup
	defer func() { unblock(); wg.Wait() }()
	wg.Go(func() { _, _ = c.Send(ctx, good, "held") })
	<-entered

	// A server that answers 429 without Retry-After and 200 with a numeric amount.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Idempotency-Key") {
		case "bare-429":
			w.WriteHeader(429)
			fmt.Fprint(w, api.MsgRateLimited)
		case "numeric":
			w.WriteHeader(201)
			fmt.Fprint(w, `{"payment":{"id":"P01NUMERIC","amount":2532,"status":"submitted","collection_date":"2018-04-10"}}`)
		case "decimal":
			w.WriteHeader(201)
			fmt.Fprint(w, `{"payment":{"id":"P01DECIMAL","amount":25.32,"status":"submitted","collection_date":"2018-04-10"}}`)
		case "403":
			w.WriteHeader(403)
		default:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		}
	}))
	defer plain.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tiny := newClient(t, e.srv.URL, "sp_tiny_budget", nil)
	for i := 0; i < api.Limits().Overall.N; i++ { // spend the tiny token's budget through cheap GETs
		e.sb.limiter.Take("sp_tiny_budget")
	}
	tests := []struct {
		name   string
		client *api.Client
		req    paybatch.Request
		key    string
		class  paybatch.ErrorClass
		status int
		code   string
		retry  time.Duration
	}{
		{"unknown token → auth", newClient(t, e.srv.URL, "wrong-secret", nil), good, "k1", paybatch.ClassAuth, 401, api.CodeUnauthorized, 0},
		{"expired token → auth", newClient(t, e.srv.URL, DefaultExpiredToken, nil), good, "k1", paybatch.ClassAuth, 498, api.CodeTokenExpired, 0},
		{"429 → rate limited with Retry-After", tiny, good, "k1", paybatch.ClassRateLimited, 429, api.CodeRateLimited, 60 * time.Second},
		{"409 in flight → transient", c, good, "held", paybatch.ClassTransient, 409, api.CodeKeyInFlight, 0},
		{"422 key reused → conflict", c, prep(payIn(t, "E-1", "2.00", "2018-04-10")), "used", paybatch.ClassConflict, 422, api.CodeKeyReused, 0},
		{"past date → rejected", c, prep(payIn(t, "E-2", "1.00", "2018-03-01")), "k2", paybatch.ClassRejected, 400, api.CodeDateInPast, 0},
		{"unknown mandate → rejected", c, prep(func() paybatch.Instruction {
			in := payIn(t, "E-3", "1.00", "2018-04-10")
			in.Mandate = "M01NOPE"
			return in
		}()), "k3", paybatch.ClassRejected, 400, api.CodeMandateNotFound, 0},
		{"unknown path → rejected", c, paybatch.Request{Method: "POST", Path: "/nothing", Body: []byte("{}")}, "k4", paybatch.ClassRejected, 404, api.CodeNotFound, 0},
		{"429 without Retry-After → 60s", newClient(t, plain.URL, "x", nil), good, "bare-429", paybatch.ClassRateLimited, 429, "", 60 * time.Second},
		{"403 → auth", newClient(t, plain.URL, "x", nil), good, "403", paybatch.ClassAuth, 403, "", 0},
		{"503 → transient, Retry-After read", newClient(t, plain.URL, "x", nil), good, "503", paybatch.ClassTransient, 503, "", 7 * time.Second},
		{"decimal amount in a response → transient (undecodable)", newClient(t, plain.URL, "x", nil), good, "decimal", paybatch.ClassTransient, 201, "", 0},
		{"connection refused before any answer → configuration", newClient(t, closedURL, "x", nil), good, "k5", paybatch.ClassConfig, 0, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.Send(ctx, tc.req, tc.key)
			var pe *paybatch.ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ProviderError", err)
			}
			if pe.Class != tc.class || pe.HTTPStatus != tc.status || pe.Problem.ReasonCode != tc.code {
				t.Fatalf("got class %s status %d code %q, want %s %d %q (%v)", pe.Class, pe.HTTPStatus, pe.Problem.ReasonCode, tc.class, tc.status, tc.code, err)
			}
			if tc.code != "" && (pe.Problem.Detail == "" || pe.Problem.Title == "" || pe.Problem.Status != tc.status) {
				t.Fatalf("problem not read from the body: %+v", pe.Problem)
			}
			if tc.code == api.CodeDateInPast && pe.Problem.Field != "payment.collection_date" {
				t.Fatalf("problem field %q", pe.Problem.Field)
			}
			if tc.retry != 0 && (pe.RetryAfter <= 0 || pe.RetryAfter > tc.retry) {
				t.Fatalf("RetryAfter %v, want (0, %v]", pe.RetryAfter, tc.retry)
			}
			for _, secret := range []string{DefaultToken, "wrong-secret", "sp_tiny_budget", DefaultExpiredToken} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks a token: %v", err)
				}
			}
		})
	}
	sub, err := newClient(t, plain.URL, "x", nil).Send(ctx, good, "numeric")
	if err != nil || sub.Amount == nil || sub.Amount.Minor != 2532 {
		t.Fatalf("numeric amount: %+v %v", sub, err)
	}
	if _, err := c.Status(ctx, paybatch.ProviderRef{Kind: paybatch.KindDDPayment, ID: "P01NOPE"}); !isClass(err, paybatch.ClassRejected) {
		t.Fatalf("status of an unknown id: %v", err)
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Send(ctxDone, good, "k6"); !isClass(err, paybatch.ClassTransient) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func isClass(err error, c paybatch.ErrorClass) bool {
	var pe *paybatch.ProviderError
	return errors.As(err, &pe) && pe.Class == c
}

// The client through the fault middleware: a lost response is a transient
// error, and the retry under the same key is a replay, not a second payment.
func TestClientLostResponseRetry(t *testing.T) {
	clock := newClock(mar19(t))
	ops := &sim.OpLog{}
	stats := &sim.Stats{}
	sb := NewSandbox(SandboxConfig{Now: clock.Now, Ops: ops, Stats: stats})
	f, err := sim.ParseFaults("lost=0.5", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := httptest.NewServer(f.Wrap(sb, stats))
	defer srv.Close()
	c := newClient(t, srv.URL, DefaultToken, nil)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		in := payIn(t, fmt.Sprintf("LOST-%d", i), "3.00", "2018-04-10")
		req, _ := c.Prepare(in)
		var sub paybatch.Submission
		for attempt := 0; ; attempt++ {
			sub, err = c.Send(ctx, req, "key-"+in.MerchantTxID)
			if err == nil {
				break
			}
			if !isClass(err, paybatch.ClassTransient) || attempt > 50 {
				t.Fatalf("%s: %v", in.MerchantTxID, err)
			}
		}
		if sub.ProviderID == "" {
			t.Fatal("no id")
		}
	}
	if ops.Len() != 20 {
		t.Fatalf("%d executions for 20 instructions", ops.Len())
	}
	if stats.Get(sim.CountFaultLost) == 0 || stats.Get(sim.CountReplayed) == 0 {
		t.Fatalf("the fault never fired: %v", stats.Snapshot())
	}
}

// FuzzPaymentBody posts arbitrary bodies to the handler: it must never
// panic, answer only 201 or 400 with JSON, and a 201 must echo an integer
// pence amount equal to what was recorded.
func FuzzPaymentBody(f *testing.F) {
	for _, s := range []string{
		paymentBody(active, 2532, "2018-04-10", "a"), paymentBody(active, "2532", "2018-03-30", ""),
		paymentBody("M01SANDBOX000000006", 1, "2018-04-10", ""), `{"payments":[{"mandate":"` + active + `","amount":1,"collection_date":"2018-04-10"}]}`,
		`{"payment":{"amount":1e2}}`, `{"payment":null}`, `[]`, `{"payment":{"amount":"١٢"}}`, "",
	} {
		f.Add([]byte(s))
	}
	clock := newClock(london(f, 2018, time.March, 19, 10))
	sb := NewSandbox(SandboxConfig{Now: clock.Now, Limit: paybatch.Limit{N: -1}})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, api.BasePath+"/payment", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		sb.ServeHTTP(w, req)
		if w.Code != 201 && w.Code != 400 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("non-JSON answer %q", w.Body)
		}
		if w.Code == 201 {
			var one struct{ Payment *api.Payment }
			if err := json.Unmarshal(w.Body.Bytes(), &one); err != nil {
				t.Fatal(err)
			}
			if one.Payment == nil { // a list: each item recorded
				return
			}
			ops := sb.Ops().All()
			last := ops[len(ops)-1]
			if last.IDs["id"] != one.Payment.ID || last.Amount != pounds(int64(one.Payment.Amount)) || one.Payment.Amount < 0 {
				t.Fatalf("recorded %+v for %+v", last, one.Payment)
			}
			if !strings.HasPrefix(string(out["payment"]), "{") {
				t.Fatalf("payment is not an object: %s", out["payment"])
			}
		}
	})
}

func TestCheckFixtures(t *testing.T) {
	if err := CheckFixtures(DefaultMandates()); err != nil {
		t.Fatalf("default fixtures: %v", err)
	}
	bad := []MandateFixture{
		{ID: "M1", Auddis: "GOODREF01", DDStatus: "ongoing_collection", BankAccount: "B1"},
		{ID: "M1", Auddis: "GOODREF01", DDStatus: "paused", BankAccount: ""},
		{ID: "", Auddis: "x", DDStatus: "cancelled", BankAccount: "B3"},
	}
	err := CheckFixtures(bad)
	if err == nil {
		t.Fatal("bad fixtures accepted")
	}
	for _, want := range []string{`mandate 1 ("M1"): id repeats mandate 0`, `auddis "GOODREF01" repeats`, `bank_account is required`, `dd_status "paused"`, `mandate 2 (""): id is required`, `auddis "x" must be 6 to 18`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
