package smartretry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	api "github.com/paybatch/paybatch/pipeline/smartretry"
)

func money(t *testing.T, s, cur string) paybatch.Money {
	t.Helper()
	m, err := paybatch.ParseMoney(s, paybatch.MustCurrency(cur))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newClient(t *testing.T, url, key string, onRate func(paybatch.RateInfo)) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.ClientConfig{BaseURL: url, APIKey: key, OnRate: onRate})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientAgainstSandbox(t *testing.T) {
	release := make(chan struct{})
	hook := func(r *http.Request) {
		if r.Header.Get("Idempotency-Key") == "held" {
			<-release
		}
	}
	e := start(t, smartretry.SandboxConfig{
		Keys:          map[string][]string{smartretry.TestAPIKey: {"ABC123", "TERM01"}, "narrow": {"TERM01"}},
		PaymentsLimit: paybatch.Limit{N: 12, Per: time.Hour},
		InFlightWait:  100 * time.Millisecond,
		BeforeExecute: hook,
		SettleAfter:   time.Second,
	}, "")
	var mu sync.Mutex
	var rates []paybatch.RateInfo
	c := newClient(t, e.url, smartretry.TestAPIKey, func(ri paybatch.RateInfo) { mu.Lock(); rates = append(rates, ri); mu.Unlock() })
	ctx := context.Background()
	sale := usdSale()
	refund := func(mtx string, amount paybatch.Money, sale smartretry.TransactionFixture) paybatch.Request {
		req, err := c.Prepare(paybatch.Instruction{Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry, Terminal: sale.Terminal,
			TransactionRef: sale.TransactionID, OrderRef: sale.OrderID, MerchantTxID: mtx, Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		return req
	}

	ok := refund("c-1", money(t, "25.00", "USD"), sale)
	sub, err := c.Send(ctx, ok, "c-1")
	if err != nil || !sub.Accepted || sub.Replayed || len(sub.ProviderID) != 8 || sub.OrderID != sale.OrderID || sub.HTTPStatus != 200 {
		t.Fatalf("first send: %+v %v", sub, err)
	}
	rep, err := c.Send(ctx, ok, "c-1")
	if err != nil || !rep.Replayed || rep.ProviderID != sub.ProviderID {
		t.Fatalf("replay: %+v %v", rep, err)
	}
	dec, err := c.Send(ctx, refund("c-2", money(t, "1.51", "USD"), sale), "c-2")
	if err != nil || dec.Accepted {
		t.Fatalf("decline must be Accepted=false without error: %+v %v", dec, err)
	}
	// A decline's reason comes with it (issue #16: it was empty at submit).
	if dec.Status == nil || dec.Status.ReasonCode != "PROCESSOR.DECLINED" || dec.Status.Detail == "" || dec.Status.Outcome != paybatch.OutcomeFailed {
		t.Fatalf("decline without its reason: %+v", dec.Status)
	}

	st, err := c.Status(ctx, paybatch.ProviderRef{Kind: paybatch.KindRefund, Terminal: "ABC123", ID: sub.ProviderID})
	if err != nil || st.Raw != "PROCESSING" || st.Outcome != paybatch.OutcomePending || st.Amount == nil || *st.Amount != money(t, "25.00", "USD") {
		t.Fatalf("status: %+v %v", st, err)
	}
	e.clock.Advance(time.Second)
	st, _ = c.Status(ctx, paybatch.ProviderRef{Terminal: "ABC123", ID: sub.ProviderID})
	// AUTH.APPROVED is not a reason: an approved row shows none (issue #16).
	if st.Outcome != paybatch.OutcomeSucceeded || st.ReasonCode != "" || st.Detail != "" {
		t.Fatalf("settled: %+v", st)
	}
	st, _ = c.Status(ctx, paybatch.ProviderRef{Terminal: "ABC123", ID: dec.ProviderID})
	if st.Outcome != paybatch.OutcomeFailed || st.Domain != "PROCESSOR" {
		t.Fatalf("declined: %+v", st)
	}
	kwd := fixture("ABC123", "KWD", "sale", 0)
	ks, err := c.Send(ctx, refund("c-kwd", money(t, "1.5", "KWD"), kwd), "c-kwd")
	if err != nil {
		t.Fatal(err)
	}
	st, _ = c.Status(ctx, paybatch.ProviderRef{Terminal: "ABC123", ID: ks.ProviderID})
	if st.Amount == nil || st.Amount.Minor != 1500 || st.Amount.Currency.Code() != "KWD" {
		t.Fatalf("KWD amount %+v", st.Amount)
	}

	classOf := func(err error) paybatch.ErrorClass {
		var pe *paybatch.ProviderError
		if !errors.As(err, &pe) {
			t.Fatalf("not a ProviderError: %v", err)
		}
		return pe.Class
	}
	// 409 IDEMPOTENCY_CONFLICT → conflict.
	_, err = c.Send(ctx, refund("c-1", money(t, "26.00", "USD"), sale), "c-1")
	if classOf(err) != paybatch.ClassConflict {
		t.Fatalf("conflict: %v", err)
	}
	// 404 → rejected, with the problem.
	bogus := sale
	bogus.TransactionID = "TXNOPE00"
	_, err = c.Send(ctx, refund("c-3", money(t, "1.00", "USD"), bogus), "c-3")
	var pe *paybatch.ProviderError
	if classOf(err) != paybatch.ClassRejected || !errors.As(err, &pe) || pe.Problem.ReasonCode != "TRANSACTION_NOT_FOUND" || pe.Problem.Field != "transaction_reference_id" {
		t.Fatalf("404: %v", err)
	}
	// 409 state conflict (over-refund) → rejected, not conflict.
	_, err = c.Send(ctx, refund("c-4", money(t, "500.00", "USD"), sale), "c-4")
	if classOf(err) != paybatch.ClassRejected {
		t.Fatalf("over-refund: %v", err)
	}
	// 401 and 403 → auth.
	bad := newClient(t, e.url, "wrong", nil)
	if _, err := bad.Send(ctx, ok, "c-5"); classOf(err) != paybatch.ClassAuth {
		t.Fatalf("401: %v", err)
	}
	narrow := newClient(t, e.url, "narrow", nil)
	if _, err := narrow.Send(ctx, ok, "c-6"); classOf(err) != paybatch.ClassAuth {
		t.Fatalf("403: %v", err)
	}
	// 503 RESOURCE_LOCKED → transient.
	held := refund("held", money(t, "2.00", "USD"), sale)
	var wg sync.WaitGroup
	wg.Go(func() { c.Send(ctx, held, "held") })
	time.Sleep(30 * time.Millisecond)
	_, err = c.Send(ctx, held, "held")
	if classOf(err) != paybatch.ClassTransient || !errors.As(err, &pe) || pe.Problem.ReasonCode != "RESOURCE_LOCKED" {
		t.Fatalf("locked: %v", err)
	}
	close(release)
	wg.Wait()
	// Payments budget (12/hour) runs out → rate-limited with Retry-After.
	var rl error
	for i := range 20 {
		if _, err := c.Send(ctx, refund(fmt.Sprintf("rl-%d", i), money(t, "0.01", "USD"), fixture("ABC123", "USD", "sale", 2)), fmt.Sprintf("rl-%d", i)); err != nil {
			rl = err
			break
		}
	}
	if classOf(rl) != paybatch.ClassRateLimited || !errors.As(rl, &pe) || pe.RetryAfter < time.Hour-time.Minute || pe.HTTPStatus != 429 {
		t.Fatalf("rate limit: %v (%+v)", rl, pe)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rates) == 0 || !rates[0].Known || rates[0].Limit != 12 || rates[0].Remaining != 11 || rates[0].Reset.IsZero() {
		t.Fatalf("OnRate: %+v", rates)
	}
}

// TestClientClassifiesRawAnswers covers answers the sandbox does not give on
// its own: Retry-After as an HTTP date, X-Idempotency-Replayed, 5xx, and a
// dropped connection from the lost fault.
func TestClientClassifiesRawAnswers(t *testing.T) {
	when := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/payments/refund/DATE01":
			w.Header().Set("Retry-After", when)
			w.WriteHeader(429)
		case "/v1/payments/refund/XHDR01":
			w.Header().Set("X-Idempotency-Replayed", "true")
			fmt.Fprint(w, `{"transaction_id":"TX000001","order_id":"OR000001","accepted":true}`)
		case "/v1/payments/refund/BOOM01":
			w.WriteHeader(502)
			fmt.Fprint(w, "bad gateway")
		case "/v1/payments/refund/GARB01":
			fmt.Fprint(w, "<html>")
		case "/v1/payments/refund/TRUN01":
			fmt.Fprint(w, `{"transaction_id":"TX0`)
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "k", nil)
	send := func(term string) (paybatch.Submission, *paybatch.ProviderError) {
		sub, err := c.Send(context.Background(), paybatch.Request{Method: "POST", Path: "/v1/payments/refund/" + term, Body: []byte("{}")}, "key")
		var pe *paybatch.ProviderError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("%s: %v", term, err)
		}
		return sub, pe
	}
	if _, pe := send("DATE01"); pe == nil || pe.Class != paybatch.ClassRateLimited || pe.RetryAfter < 80*time.Second || pe.RetryAfter > 91*time.Second {
		t.Fatalf("HTTP-date Retry-After: %+v", pe)
	}
	if sub, pe := send("XHDR01"); pe != nil || !sub.Replayed {
		t.Fatalf("X-Idempotency-Replayed: %+v %v", sub, pe)
	}
	if _, pe := send("BOOM01"); pe == nil || pe.Class != paybatch.ClassTransient || pe.HTTPStatus != 502 || pe.Problem.Detail != "bad gateway" {
		t.Fatalf("502: %+v", pe)
	}
	// An HTML page is not the API: a configuration fault, never an outcome.
	if _, pe := send("GARB01"); pe == nil || pe.Class != paybatch.ClassConfig {
		t.Fatalf("HTML 200: %+v", pe)
	}
	// A cut-off JSON answer may have executed: transient, same key again.
	if _, pe := send("TRUN01"); pe == nil || pe.Class != paybatch.ClassTransient {
		t.Fatalf("truncated 200: %+v", pe)
	}

	// A lost response: transient for the client, executed in the sandbox.
	e := start(t, smartretry.SandboxConfig{}, "lost=1")
	lc, _ := api.NewClient(api.ClientConfig{BaseURL: e.url, APIKey: smartretry.TestAPIKey,
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	sale := usdSale()
	req, _ := lc.Prepare(paybatch.Instruction{Kind: paybatch.KindRefund, Terminal: "ABC123", TransactionRef: sale.TransactionID, OrderRef: sale.OrderID, MerchantTxID: "lost", Amount: money(t, "3.00", "USD")})
	_, err := lc.Send(context.Background(), req, "lost-key")
	var pe *paybatch.ProviderError
	if !errors.As(err, &pe) || pe.Class != paybatch.ClassTransient || pe.HTTPStatus != 0 {
		t.Fatalf("lost: %v", err)
	}
	if ops := e.ops.All(); len(ops) != 1 || ops[0].IdempotencyKey != "lost-key" {
		t.Fatalf("lost op not executed: %+v", ops)
	}
}

// FuzzSandboxRefund throws arbitrary bodies at the refund endpoint: the
// sandbox must answer a 200 or a 4xx problem, never panic or 5xx.
func FuzzSandboxRefund(f *testing.F) {
	sale := usdSale()
	f.Add(refundBody(sale, "r", "25.00"))
	f.Add(refundBody(sale, "r", ""))
	f.Add(`{"transaction_reference_id":null}`)
	f.Add(`[]`)
	f.Add(`{"amount":1e400}`)
	sb := smartretry.NewSandbox(smartretry.SandboxConfig{PaymentsLimit: paybatch.Limit{N: 1 << 30, Per: time.Second}, OverallLimit: paybatch.Limit{N: 1 << 30, Per: time.Second}})
	f.Fuzz(func(t *testing.T, body string) {
		for _, op := range []string{"refund", "capture", "void", "sale"} {
			req := httptest.NewRequest("POST", "/v1/payments/"+op+"/ABC123", strings.NewReader(body))
			req.Header.Set("x-api-key", smartretry.TestAPIKey)
			req.Header.Set("Idempotency-Key", "fz")
			rec := httptest.NewRecorder()
			sb.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %q → %d %s", op, body, rec.Code, rec.Body)
			}
			if rec.Code != 200 && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %q → %d without a problem", op, body, rec.Code)
			}
		}
		sb.Reset()
	})
}
