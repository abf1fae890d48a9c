package smartretry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

func money(t *testing.T, s, cur string) paybatch.Money {
	t.Helper()
	m, err := paybatch.ParseMoney(s, paybatch.MustCurrency(cur))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newClient(t *testing.T, url, key string, onRate func(paybatch.RateInfo)) *smartretry.Client {
	t.Helper()
	c, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: url, APIKey: key, OnRate: onRate})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPrepareCanonical(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", "k", nil)
	base := paybatch.Instruction{Provider: paybatch.SmartRetry, Terminal: "ABC123", TransactionRef: "TX8A3F2C", OrderRef: "OR7B9E1D", MerchantTxID: "refund-20260331-001"}
	with := func(k paybatch.Kind, m paybatch.Money) paybatch.Instruction {
		in := base
		in.Kind, in.Amount = k, m
		return in
	}
	tests := []struct {
		name string
		in   paybatch.Instruction
		path string
		body string
	}{
		{"USD refund", with(paybatch.KindRefund, money(t, "25", "USD")), "/v1/payments/refund/ABC123",
			`{"transaction_reference_id":"TX8A3F2C","order_reference_id":"OR7B9E1D","merchant_transaction_id":"refund-20260331-001","amount":25.00,"currency":"USD"}`},
		{"JPY refund", with(paybatch.KindRefund, money(t, "1000", "JPY")), "/v1/payments/refund/ABC123",
			`{"transaction_reference_id":"TX8A3F2C","order_reference_id":"OR7B9E1D","merchant_transaction_id":"refund-20260331-001","amount":1000,"currency":"JPY"}`},
		{"KWD refund", with(paybatch.KindRefund, money(t, "1.5", "KWD")), "/v1/payments/refund/ABC123",
			`{"transaction_reference_id":"TX8A3F2C","order_reference_id":"OR7B9E1D","merchant_transaction_id":"refund-20260331-001","amount":1.500,"currency":"KWD"}`},
		{"full refund", with(paybatch.KindRefund, paybatch.Money{}), "/v1/payments/refund/ABC123",
			`{"transaction_reference_id":"TX8A3F2C","order_reference_id":"OR7B9E1D","merchant_transaction_id":"refund-20260331-001"}`},
		{"capture", with(paybatch.KindCapture, money(t, "10.10", "EUR")), "/v1/payments/capture/ABC123",
			`{"transaction_reference_id":"TX8A3F2C","order_reference_id":"OR7B9E1D","merchant_transaction_id":"refund-20260331-001","amount":10.10}`},
		{"void", with(paybatch.KindVoid, money(t, "10.10", "EUR")), "/v1/payments/void/ABC123",
			`{"transaction_reference_id":"TX8A3F2C","order_reference_id":"OR7B9E1D"}`},
	}
	for _, tt := range tests {
		req, err := c.Prepare(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if req.Method != "POST" || req.Path != tt.path || string(req.Body) != tt.body {
			t.Errorf("%s: %s %s %s\nwant %s", tt.name, req.Method, req.Path, req.Body, tt.body)
		}
		again, _ := c.Prepare(tt.in)
		if string(again.Body) != string(req.Body) {
			t.Errorf("%s: not deterministic", tt.name)
		}
	}
	bad := []paybatch.Instruction{
		{Kind: paybatch.KindDDPayment, Terminal: "ABC123", TransactionRef: "TX8A3F2C", OrderRef: "OR7B9E1D"},
		{Kind: paybatch.KindRefund, Terminal: "ABC12", TransactionRef: "TX8A3F2C", OrderRef: "OR7B9E1D"},
		{Kind: paybatch.KindRefund, Terminal: "ABC123", TransactionRef: "TX8A3F2", OrderRef: "OR7B9E1D"},
		{Kind: paybatch.KindRefund, Terminal: "ABC123", TransactionRef: "TX8A3F2C", OrderRef: "OR7B9E1D!"},
		{Kind: paybatch.KindRefund, Provider: paybatch.SmarterPay, Terminal: "ABC123", TransactionRef: "TX8A3F2C", OrderRef: "OR7B9E1D"},
	}
	for _, in := range bad {
		if _, err := c.Prepare(in); !errors.Is(err, paybatch.ErrBadField) {
			t.Errorf("Prepare(%+v) = %v, want ErrBadField", in, err)
		}
	}
}

func TestNewClientRules(t *testing.T) {
	for _, u := range []string{"http://api.smartretry.com", "ftp://127.0.0.1", "http://user:pw@127.0.0.1:1", "://x"} {
		if _, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: u, APIKey: "k"}); err == nil {
			t.Errorf("NewClient(%q): want error", u)
		}
	}
	for _, u := range []string{"", "https://api.smartretry.com", "http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:9"} {
		if _, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: u, APIKey: "k"}); err != nil {
			t.Errorf("NewClient(%q): %v", u, err)
		}
	}
	if _, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: "http://127.0.0.1:1"}); err == nil {
		t.Error("no key: want error")
	}
	c := newClient(t, "http://127.0.0.1:1", "super-secret-key", nil)
	if s := fmt.Sprintf("%v %+v %#v %s", c, c, c, c); strings.Contains(s, "super-secret") {
		t.Fatalf("key leaked: %s", s)
	}
	_, err := c.Send(context.Background(), paybatch.Request{Method: "POST", Path: "/v1/payments/refund/ABC123", Body: []byte("{}")}, "k")
	if err == nil || strings.Contains(err.Error(), "super-secret") {
		t.Fatalf("transport error %v", err)
	}
	var pe *paybatch.ProviderError
	// Refused before the endpoint ever answered: the URL is wrong, not the
	// provider down (issue #16).
	if !errors.As(err, &pe) || pe.Class != paybatch.ClassConfig || !strings.Contains(err.Error(), "http://127.0.0.1:1: nothing is listening there") {
		t.Fatalf("connection refused: %v", err)
	}
}

// TestClientAgainstSandbox drives every classified answer from the real
// sandbox.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"25.00", "1000", "1.500", "0.01", "1e2", "-1", "01", "25.", ".5", "99999999999999999999"} {
		f.Add(s, "USD")
		f.Add(s, "JPY")
		f.Add(s, "KWD")
	}
	f.Fuzz(func(t *testing.T, s, code string) {
		cur, err := paybatch.ParseCurrency(code)
		if err != nil {
			return
		}
		m, err := smartretry.ParseAmount(s, cur)
		if err != nil {
			return
		}
		if m.Minor <= 0 {
			t.Fatalf("ParseAmount(%q) = %d", s, m.Minor)
		}
		// Round trip: the canonical text parses back to the same amount.
		back, err := smartretry.ParseAmount(m.String(), cur)
		if err != nil || back != m {
			t.Fatalf("round trip %q → %s → %v %v", s, m, back, err)
		}
	})
}
