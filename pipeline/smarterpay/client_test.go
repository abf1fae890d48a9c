package smarterpay

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sim"
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
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func newClient(t testing.TB, base, token string, onRate func(paybatch.RateInfo)) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{BaseURL: base + BasePath, Token: token, OnRate: onRate})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payIn(t testing.TB, ref, amount, date string) paybatch.Instruction {
	return paybatch.Instruction{Kind: paybatch.KindDDPayment, Provider: paybatch.SmarterPay, MerchantTxID: ref,
		Amount: gbp(t, amount), Mandate: active, CollectionDate: day(date), Description: "Invoice " + ref}
}

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		base string
		ok   bool
	}{
		{"", true},
		{"https://api.smarterpaycloud.com/service.svc", true},
		{"https://uatapi.smarterpaycloud.com/service.svc/", true},
		{"http://127.0.0.1:8080/service.svc", true},
		{"http://[::1]:8080/service.svc", true},
		{"http://localhost:8080/service.svc", true},
		{"http://api.smarterpaycloud.com/service.svc", false},
		{"http://10.0.0.1/service.svc", false},
		{"ftp://127.0.0.1/", false},
		{"https://user:pw@api.smarterpaycloud.com/", false},
		{"https:///service.svc", false},
	} {
		_, err := NewClient(ClientConfig{BaseURL: tc.base, Token: "secret-token-123"})
		if (err == nil) != tc.ok {
			t.Errorf("%q: err=%v, want ok=%v", tc.base, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "secret-token-123") {
			t.Errorf("error leaks the token: %v", err)
		}
	}
	if _, err := NewClient(ClientConfig{}); err == nil {
		t.Error("a client without a token was built")
	}
	cfg := ClientConfig{Token: "secret-token-123"}
	c, _ := NewClient(cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(c), fmt.Sprintf("%+v", c)} {
		if strings.Contains(s, "secret-token-123") {
			t.Errorf("token printed: %s", s)
		}
	}
}

func TestPrepareGolden(t *testing.T) {
	c, _ := NewClient(ClientConfig{Token: "x"})
	ins := map[string]paybatch.Instruction{
		"payment": {Kind: paybatch.KindDDPayment, MerchantTxID: "INV-0001", Amount: gbp(t, "25.32"), Mandate: "M01YZ96J1D7WDK8NEWD",
			CollectionDate: day("2026-12-24"), Description: "December <fees> & co", DefaultNarrative: "ACME FEES"},
		"credit": {Kind: paybatch.KindDDCredit, MerchantTxID: "PAYOUT-9", Amount: gbp(t, "1000"), Auddis: "FBMAN02814872",
			CollectionDate: day("2026-12-29"), Description: "Refund"},
	}
	for name, in := range ins {
		req, err := c.Prepare(in)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := c.Prepare(in)
		if string(again.Body) != string(req.Body) {
			t.Fatal("Prepare is not deterministic")
		}
		got := req.Method + " " + req.Path + "\n" + string(req.Body) + "\n"
		golden := filepath.Join("testdata", "prepare_"+name+".golden")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func TestPrepareRefuses(t *testing.T) {
	c, _ := NewClient(ClientConfig{Token: "x"})
	base := payIn(t, "R1", "1.00", "2026-12-29")
	for name, mod := range map[string]func(*paybatch.Instruction){
		"USD": func(in *paybatch.Instruction) {
			in.Amount = paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: 100}
		},
		"zero":         func(in *paybatch.Instruction) { in.Amount.Minor = 0 },
		"negative":     func(in *paybatch.Instruction) { in.Amount.Minor = -1 },
		"no currency":  func(in *paybatch.Instruction) { in.Amount = paybatch.Money{Minor: 100} },
		"no date":      func(in *paybatch.Instruction) { in.CollectionDate = time.Time{} },
		"no mandate":   func(in *paybatch.Instruction) { in.Mandate = "" },
		"refund kind":  func(in *paybatch.Instruction) { in.Kind = paybatch.KindRefund },
		"credit payee": func(in *paybatch.Instruction) { in.Kind = paybatch.KindDDCredit; in.Mandate = "" },
	} {
		in := base
		mod(&in)
		if _, err := c.Prepare(in); err == nil {
			t.Errorf("%s: prepared", name)
		}
	}
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
		sub.Status == nil || sub.Status.Outcome != paybatch.OutcomePending || sub.Status.Raw != StatusPendingSubmission {
		t.Fatalf("submission %+v status %+v", sub, sub.Status)
	}
	rateMu.Lock()
	if !rate.Known || rate.Limit != DefaultLimit || rate.Remaining != DefaultLimit-1 || rate.Reset.IsZero() {
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
	if err != nil || st.Outcome != paybatch.OutcomePending || st.Raw != StatusPendingSubmission {
		t.Fatalf("status %+v %v", st, err)
	}
	e.clock.Add(time.Minute)
	if st, _ = c.Status(ctx, ref); st.Outcome != paybatch.OutcomePending || st.Raw != StatusSubmitted {
		t.Fatalf("status %+v", st)
	}
	e.clock.Add(time.Hour)
	st, _ = c.Status(ctx, ref)
	if st.Outcome != paybatch.OutcomeFailed || st.ReasonCode != "0" || st.Domain != "ARUDD" || !strings.Contains(st.Detail, "Refer to payer") ||
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
		c.Limit, c.Window = 1000, time.Minute
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
			fmt.Fprint(w, MsgRateLimited)
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
	for i := 0; i < DefaultLimit; i++ { // spend the tiny token's budget through cheap GETs
		e.sb.limiter.Take("sp_tiny_budget")
	}
	tests := []struct {
		name   string
		client *Client
		req    paybatch.Request
		key    string
		class  paybatch.ErrorClass
		status int
		code   string
		retry  time.Duration
	}{
		{"unknown token → auth", newClient(t, e.srv.URL, "wrong-secret", nil), good, "k1", paybatch.ClassAuth, 401, CodeUnauthorized, 0},
		{"expired token → auth", newClient(t, e.srv.URL, DefaultExpiredToken, nil), good, "k1", paybatch.ClassAuth, 498, CodeTokenExpired, 0},
		{"429 → rate limited with Retry-After", tiny, good, "k1", paybatch.ClassRateLimited, 429, CodeRateLimited, 60 * time.Second},
		{"409 in flight → transient", c, good, "held", paybatch.ClassTransient, 409, CodeKeyInFlight, 0},
		{"422 key reused → conflict", c, prep(payIn(t, "E-1", "2.00", "2018-04-10")), "used", paybatch.ClassConflict, 422, CodeKeyReused, 0},
		{"past date → rejected", c, prep(payIn(t, "E-2", "1.00", "2018-03-01")), "k2", paybatch.ClassRejected, 400, CodeDateInPast, 0},
		{"unknown mandate → rejected", c, prep(func() paybatch.Instruction {
			in := payIn(t, "E-3", "1.00", "2018-04-10")
			in.Mandate = "M01NOPE"
			return in
		}()), "k3", paybatch.ClassRejected, 400, CodeMandateNotFound, 0},
		{"unknown path → rejected", c, paybatch.Request{Method: "POST", Path: "/nothing", Body: []byte("{}")}, "k4", paybatch.ClassRejected, 404, CodeNotFound, 0},
		{"429 without Retry-After → 60s", newClient(t, plain.URL, "x", nil), good, "bare-429", paybatch.ClassRateLimited, 429, "", 60 * time.Second},
		{"403 → auth", newClient(t, plain.URL, "x", nil), good, "403", paybatch.ClassAuth, 403, "", 0},
		{"503 → transient, Retry-After read", newClient(t, plain.URL, "x", nil), good, "503", paybatch.ClassTransient, 503, "", 7 * time.Second},
		{"decimal amount in a response → transient (undecodable)", newClient(t, plain.URL, "x", nil), good, "decimal", paybatch.ClassTransient, 201, "", 0},
		{"connection refused → transient", newClient(t, closedURL, "x", nil), good, "k5", paybatch.ClassTransient, 0, "", 0},
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
			if tc.code == CodeDateInPast && pe.Problem.Field != "payment.collection_date" {
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
