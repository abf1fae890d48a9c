package sandbox_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"

	"github.com/paybatch/paybatch/pipeline/sandbox"
)

const benchSales = 1000

// benchFixtures: 1000 USD sales of 1,000,000.00 each, so b.N refunds of
// 0.01 never run out of refundable amount.
func benchFixtures() *sandbox.Fixtures {
	f := &sandbox.Fixtures{}
	for i := range benchSales {
		f.SmartRetry.Transactions = append(f.SmartRetry.Transactions, srsandbox.TransactionFixture{
			TransactionID: fmt.Sprintf("TXB%05d", i), OrderID: fmt.Sprintf("ORB%05d", i), Terminal: "ABC123",
			Type: "sale", Amount: "1000000.00", Currency: "USD", Status: "APPROVED",
		})
	}
	return f
}

func benchOptions() sandbox.Options {
	unlimited := paybatch.Limit{N: 1 << 30, Per: time.Second}
	return sandbox.Options{Fixtures: benchFixtures(), SmartRetry: srsandbox.SandboxConfig{
		PaymentsLimit: unlimited, StatusLimit: unlimited, OverallLimit: unlimited}}
}

func refundRequest(base string, i int64) *http.Request {
	body := fmt.Appendf(nil, `{"transaction_reference_id":"TXB%05d","order_reference_id":"ORB%05d","merchant_transaction_id":"bench-%d","amount":0.01}`,
		i%benchSales, i%benchSales, i)
	req, _ := http.NewRequest("POST", base+"/v1/payments/refund/ABC123", bytes.NewReader(body))
	req.Header.Set("x-api-key", srsandbox.TestAPIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", i))
	return req
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
}

func runParallel(b *testing.B, url string, check func(*http.Response)) {
	hc := benchClient()
	var n atomic.Int64
	b.SetParallelism(4) // 4×GOMAXPROCS client goroutines, like a bounded submit pool
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Do(refundRequest(url, n.Add(1)))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			check(resp)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkSandboxKeyedRefunds: keyed refunds through the full sandbox
// (auth, limits, idempotency store, state, op log) over loopback HTTP.
func BenchmarkSandboxKeyedRefunds(b *testing.B) {
	ts := sandboxtest.NewServer(b, benchOptions())
	runParallel(b, ts.URL, func(resp *http.Response) {
		if resp.StatusCode != 200 || resp.Header.Get("Idempotency-Replayed") != "false" {
			b.Errorf("status %d", resp.StatusCode)
		}
	})
	if got := len(ts.Server.Operations()); got < b.N {
		b.Fatalf("executed %d of %d", got, b.N)
	}
}

// BenchmarkLoopbackBaseline: the same requests answered by a handler that
// only reads the body and writes a fixed acknowledgement — the cost of
// loopback HTTP itself on this machine.
func BenchmarkLoopbackBaseline(b *testing.B) {
	ack := []byte(`{"transaction_id":"TX000001","order_id":"ORB00001","merchant_transaction_id":"bench","accepted":true}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(ack)
	}))
	defer srv.Close()
	runParallel(b, srv.URL, func(resp *http.Response) {
		if resp.StatusCode != 200 {
			b.Errorf("status %d", resp.StatusCode)
		}
	})
}

// BenchmarkSandboxKeyedRefundsInProcess: the sandbox handler without the
// network, to show where the time goes.
func BenchmarkSandboxKeyedRefundsInProcess(b *testing.B) {
	srv, err := sandbox.New(benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, refundRequest("http://sandbox", n.Add(1)))
			if rec.Code != 200 {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
