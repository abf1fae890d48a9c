package smarterpay

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	api "github.com/paybatch/paybatch/pipeline/smarterpay"

	"github.com/paybatch/paybatch"
)

// benchSend drives Client.Send with a fresh idempotency key per payment
// from parallel goroutines against srv and reports payments/s.
func benchSend(b *testing.B, srvURL string) {
	c, err := api.NewClient(api.ClientConfig{BaseURL: srvURL + api.BasePath, Token: DefaultToken})
	if err != nil {
		b.Fatal(err)
	}
	in := paybatch.Instruction{Kind: paybatch.KindDDPayment, MerchantTxID: "BENCH", Amount: paybatch.Money{Currency: paybatch.MustCurrency("GBP"), Minor: 2532},
		Mandate: active, CollectionDate: time.Date(2018, 4, 10, 0, 0, 0, 0, time.UTC), Description: "bench"}
	req, err := c.Prepare(in)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	ctx := context.Background()
	b.SetParallelism(8) // 8 × GOMAXPROCS senders, like a bounded submission pool
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Send(ctx, req, fmt.Sprintf("bench-%d", n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "payments/s")
}

// BenchmarkSandboxCreatePayment: keyed POST /payment through the client
// over loopback HTTP into the stateful sandbox (auth, rate-limit
// bookkeeping, idempotency store, validation, banking-day rule, op log).
func BenchmarkSandboxCreatePayment(b *testing.B) {
	clock := newClock(london(b, 2018, time.March, 19, 10))
	sb := NewSandbox(SandboxConfig{Now: clock.Now, Limit: paybatch.Limit{N: 1 << 30, Per: time.Minute}})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	benchSend(b, srv.URL)
}

// BenchmarkLoopbackBaseline: the same client and request against a handler
// that only drains the body and writes a canned 201 payment — the raw cost
// of net/http on loopback, the ceiling for the sandbox.
func BenchmarkLoopbackBaseline(b *testing.B) {
	canned := []byte(`{"payment":{"id":"P01000000000000001","amount":"2532","auddis":"PBSANDBOX0001","mandate":"M01SANDBOX000000001","collection_date":"2018-04-10","created_at":"2018-03-19T10:00:00Z","custom_reference":"BENCH","default_narrative":"","description":"bench","metadata":"","users_reference":"","paying_bank_reference":"","payment_type":"ongoing collection","record_type":"direct_debit","related_payment":" ","status":"pending_submission"}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 1024)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(201)
		_, _ = w.Write(canned)
	}))
	defer srv.Close()
	benchSend(b, srv.URL)
}

// BenchmarkSandboxCreatePaymentInProcess: the handler alone, no network.
func BenchmarkSandboxCreatePaymentInProcess(b *testing.B) {
	clock := newClock(london(b, 2018, time.March, 19, 10))
	sb := NewSandbox(SandboxConfig{Now: clock.Now, Limit: paybatch.Limit{N: 1 << 30, Per: time.Minute}})
	body := paymentBody(active, 2532, "2018-04-10", "BENCH")
	var n atomic.Int64
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, api.BasePath+"/payment", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+DefaultToken)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", n.Add(1)))
			w := httptest.NewRecorder()
			sb.ServeHTTP(w, req)
			if w.Code != 201 {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "payments/s")
}
