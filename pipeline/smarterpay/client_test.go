package smarterpay

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
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

func payIn(t testing.TB, ref, amount, date string) paybatch.Instruction {
	return paybatch.Instruction{Kind: paybatch.KindDDPayment, Provider: paybatch.SmarterPay, MerchantTxID: ref,
		Amount: gbp(t, amount), Mandate: "M01SANDBOX000000001", CollectionDate: day(date), Description: "Invoice " + ref}
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
