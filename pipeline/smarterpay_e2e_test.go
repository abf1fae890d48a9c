package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	spsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
)

// spSandbox serves the SmarterPay sandbox (behind seeded faults) on
// 127.0.0.1 and returns the client's base URL and the ground-truth log.
func spSandbox(t *testing.T, faults string) (string, *sim.OpLog, *sim.Stats) {
	t.Helper()
	ops, stats := &sim.OpLog{}, &sim.Stats{}
	sb := spsandbox.NewSandbox(spsandbox.SandboxConfig{Limit: paybatch.Limit{N: -1}, SubmitAfter: 100 * time.Millisecond,
		SettleAfter: 200 * time.Millisecond, Ops: ops, Stats: stats})
	f, err := sim.ParseFaults(faults, 5)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.Wrap(sb, stats)}
	go srv.Serve(ln)
	t.Cleanup(func() { f.Close(); srv.Close() })
	return "http://" + ln.Addr().String() + smarterpay.BasePath, ops, stats
}

func ddPayments(n int) []paybatch.Instruction {
	gbp := paybatch.MustCurrency("GBP")
	date := time.Now().UTC().AddDate(0, 0, 14).Truncate(24 * time.Hour)
	out := make([]paybatch.Instruction, n)
	for i := range out {
		out[i] = paybatch.Instruction{Kind: paybatch.KindDDPayment, Provider: paybatch.SmarterPay,
			MerchantTxID: fmt.Sprintf("dd-%05d", i), Amount: paybatch.Money{Currency: gbp, Minor: int64(2500 + i)},
			Mandate: "M01SANDBOX000000001", CollectionDate: date, Description: "subscription",
			Source: paybatch.Source{File: "dd.csv", Row: i + 2}}
	}
	return out
}

func spClient(t *testing.T, url string, pacer *pipeline.Pacer) *smarterpay.Client {
	hc := &http.Client{Timeout: 5 * time.Second}
	c, err := smarterpay.NewClient(smarterpay.ClientConfig{BaseURL: url, Token: spsandbox.DefaultToken,
		HTTPClient: hc, OnRate: pacer.OnRate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	return c
}

func onceByReference(t *testing.T, ops []sim.Operation, ins []paybatch.Instruction) {
	t.Helper()
	n := map[string]int{}
	for _, op := range ops {
		n[op.Reference]++
	}
	if len(ops) != len(ins) {
		t.Errorf("%d operations executed for %d instructions", len(ops), len(ins))
	}
	for _, in := range ins {
		if n[in.MerchantTxID] != 1 {
			t.Errorf("%s executed %d times", in.MerchantTxID, n[in.MerchantTxID])
		}
	}
}

func TestSmarterPayExactlyOnceUnderFaults(t *testing.T) {
	url, ops, stats := spSandbox(t, "5xx=0.1,reset=0.05,lost=0.05,latency=5ms±5ms")
	pacer := pipeline.NewPacer(fastLimits)
	j := openJournal(t, t.TempDir()+"/j.duckdb")
	ins := ddPayments(200)
	cfg := testConfig(pacer)
	res, err := pipeline.Submit(context.Background(), j, spClient(t, url, pacer), seqOf(ins), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Get(sim.CountFaultLost) == 0 {
		t.Error("no lost responses injected")
	}
	if res.States[paybatch.StateFinal] != len(ins) {
		t.Errorf("states %v", res.States)
	}
	onceByReference(t, ops.All(), ins)
}

// A row left "sending" for longer than the 24 h window is looked up by its
// custom_reference, never re-sent blindly.
func TestSmarterPayStaleSendingResolvedByLookup(t *testing.T) {
	url, ops, _ := spSandbox(t, "")
	pacer := pipeline.NewPacer(fastLimits)
	c := spClient(t, url, pacer)
	ins := ddPayments(6)
	// Rows 0–2 were executed by a run whose process died before it could
	// journal the answers; rows 3–5 never left.
	for _, in := range ins[:3] {
		req, err := c.Prepare(in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Send(context.Background(), req, pipeline.Key(in)); err != nil {
			t.Fatal(err)
		}
	}
	j := openJournal(t, t.TempDir()+"/j.duckdb")
	cfg := testConfig(pacer)
	cfg.NoPoll = true
	clock := time.Now()
	cfg.Now = func() time.Time { return clock }
	// Journal all six as "sending", first sent 25 h ago (the provider's
	// replay window has passed, so the same key would execute again).
	if err := pipeline.JournalSending(context.Background(), j, c, ins, clock.Add(-25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Submit(context.Background(), j, c, seqOf(ins), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// accepted, or final when the sandbox's status clock has already moved
	if res.States[paybatch.StateAccepted]+res.States[paybatch.StateFinal] != 6 || res.Unresolved != 0 {
		t.Fatalf("states %v unresolved %d", res.States, res.Unresolved)
	}
	onceByReference(t, ops.All(), ins)
	rows, _ := j.Rows(context.Background(), journal.Query{})
	for _, r := range rows[:3] {
		if !r.Replayed || r.ProviderID == "" {
			t.Errorf("%s: not resolved by lookup: %+v", r.MerchantTxID, r)
		}
	}
}
