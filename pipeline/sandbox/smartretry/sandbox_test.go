package smartretry_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	"github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

const saleCard = `"order":{"payment_instrument":{"payment_method":"cards","card_number":"4111111111111111","expiry_month":12,"expiry_year":2030,"card_cardholder_name":"J SMITH"}}`

func saleBody(mtx, amount, cur string) string {
	return `{"merchant_transaction_id":"` + mtx + `","amount":` + amount + `,"currency":"` + cur + `",` + saleCard + `}`
}

// TestProblems covers every refusal: status, reason_code, context.field,
// problem+json, and that nothing executed.
func TestProblems(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{
		Keys: map[string][]string{smartretry.TestAPIKey: {"ABC123", "TERM01"}, "other_key": {"ZZZ999"}},
	}, "")
	sale := usdSale()                             // 120.00 USD on ABC123
	pre := fixture("ABC123", "USD", "preauth", 0) // 200.00 USD
	jpy := fixture("ABC123", "JPY", "sale", 0)
	kwd := fixture("ABC123", "KWD", "sale", 0)
	ref := func(amount string) string { return refundBody(sale, "r-1", amount) }
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		status int
		reason string
		field  string
	}{
		{"no API key", "POST", "/v1/payments/refund/ABC123", ref("1.00"), map[string]string{"x-api-key": "-"}, 401, "INVALID_API_KEY", ""},
		{"unknown API key", "POST", "/v1/payments/refund/ABC123", ref("1.00"), map[string]string{"x-api-key": "nope"}, 401, "INVALID_API_KEY", ""},
		{"no API key on status", "GET", "/v1/payments/status/ABC123/" + sale.TransactionID, "", map[string]string{"x-api-key": "-"}, 401, "INVALID_API_KEY", ""},
		{"terminal not allowed", "POST", "/v1/payments/refund/ABC123", ref("1.00"), map[string]string{"x-api-key": "other_key"}, 403, "TERMINAL_NOT_ALLOWED", "terminal_friendly_id"},
		{"status terminal not allowed", "GET", "/v1/payments/status/ZZZ999/" + sale.TransactionID, "", nil, 403, "TERMINAL_NOT_ALLOWED", "terminal_friendly_id"},
		{"amount as string", "POST", "/v1/payments/refund/ABC123", refundBody(sale, "r", `"1.00"`), nil, 400, "INVALID_AMOUNT", "amount"},
		{"USD three decimals", "POST", "/v1/payments/refund/ABC123", ref("25.001"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"USD trailing zero decimal", "POST", "/v1/payments/refund/ABC123", ref("25.000"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"JPY with decimals", "POST", "/v1/payments/refund/ABC123", refundBody(jpy, "r", "1000.5"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"KWD four decimals", "POST", "/v1/payments/refund/ABC123", refundBody(kwd, "r", "1.0001"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"exponent", "POST", "/v1/payments/refund/ABC123", ref("1e1"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"negative", "POST", "/v1/payments/refund/ABC123", ref("-5.00"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"zero", "POST", "/v1/payments/refund/ABC123", ref("0.00"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"short transaction ref", "POST", "/v1/payments/refund/ABC123", `{"transaction_reference_id":"TX1","order_reference_id":"` + sale.OrderID + `"}`, nil, 400, "VALIDATION_ERROR", "transaction_reference_id"},
		{"long order ref", "POST", "/v1/payments/refund/ABC123", `{"transaction_reference_id":"` + sale.TransactionID + `","order_reference_id":"ORS000011"}`, nil, 400, "VALIDATION_ERROR", "order_reference_id"},
		{"missing transaction ref", "POST", "/v1/payments/refund/ABC123", `{"order_reference_id":"` + sale.OrderID + `"}`, nil, 400, "VALIDATION_ERROR", "transaction_reference_id"},
		{"merchant id over 100", "POST", "/v1/payments/refund/ABC123", refundBody(sale, strings.Repeat("m", 101), "1.00"), nil, 400, "VALIDATION_ERROR", "merchant_transaction_id"},
		{"misspelt amount is refused, not a full refund", "POST", "/v1/payments/refund/ABC123", `{"transaction_reference_id":"` + sale.TransactionID + `","order_reference_id":"` + sale.OrderID + `","ammount":1.00}`, nil, 400, "VALIDATION_ERROR", "ammount"},
		{"wrong type", "POST", "/v1/payments/refund/ABC123", `{"transaction_reference_id":12345678,"order_reference_id":"` + sale.OrderID + `"}`, nil, 400, "VALIDATION_ERROR", "transaction_reference_id"},
		{"empty body", "POST", "/v1/payments/refund/ABC123", "", nil, 400, "VALIDATION_ERROR", ""},
		{"malformed JSON", "POST", "/v1/payments/refund/ABC123", `{"transaction_reference_id":`, nil, 400, "VALIDATION_ERROR", ""},
		{"trailing data", "POST", "/v1/payments/refund/ABC123", ref("1.00") + `{}`, nil, 400, "VALIDATION_ERROR", ""},
		{"not JSON content type", "POST", "/v1/payments/refund/ABC123", ref("1.00"), map[string]string{"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"currency mismatch", "POST", "/v1/payments/refund/ABC123", strings.TrimSuffix(ref("1.00"), "}") + `,"currency":"EUR"}`, nil, 400, "CURRENCY_MISMATCH", "currency"},
		{"same merchant id as the sale", "POST", "/v1/payments/refund/ABC123", refundBody(sale, sale.MerchantTransactionID, "1.00"), nil, 400, "VALIDATION_ERROR", "merchant_transaction_id"},
		{"unknown transaction", "POST", "/v1/payments/refund/ABC123", `{"transaction_reference_id":"TXNOPE00","order_reference_id":"` + sale.OrderID + `"}`, nil, 404, "TRANSACTION_NOT_FOUND", "transaction_reference_id"},
		{"transaction on another terminal", "POST", "/v1/payments/refund/TERM01", ref("1.00"), nil, 404, "TRANSACTION_NOT_FOUND", "transaction_reference_id"},
		{"order mismatch", "POST", "/v1/payments/refund/ABC123", `{"transaction_reference_id":"` + sale.TransactionID + `","order_reference_id":"ORS99999"}`, nil, 409, "ORDER_REFERENCE_MISMATCH", "order_reference_id"},
		{"refund above original", "POST", "/v1/payments/refund/ABC123", ref("120.01"), nil, 409, "REFUND_EXCEEDS_ORIGINAL", "amount"},
		{"refund of a preauth", "POST", "/v1/payments/refund/ABC123", refundBody(pre, "r", "1.00"), nil, 409, "INVALID_TRANSACTION_STATE", "transaction_reference_id"},
		{"capture of a sale", "POST", "/v1/payments/capture/ABC123", refundBody(sale, "c", "1.00"), nil, 409, "INVALID_TRANSACTION_STATE", "transaction_reference_id"},
		{"void of a sale", "POST", "/v1/payments/void/ABC123", `{"transaction_reference_id":"` + sale.TransactionID + `","order_reference_id":"` + sale.OrderID + `"}`, nil, 409, "INVALID_TRANSACTION_STATE", "transaction_reference_id"},
		{"void with merchant id (not in the contract)", "POST", "/v1/payments/void/ABC123", refundBody(pre, "v", ""), nil, 400, "VALIDATION_ERROR", "merchant_transaction_id"},
		{"capture above authorised", "POST", "/v1/payments/capture/ABC123", refundBody(pre, "c", "200.01"), nil, 409, "CAPTURE_EXCEEDS_AUTHORIZED", "amount"},
		{"sale without instrument", "POST", "/v1/payments/sale/ABC123", `{"merchant_transaction_id":"s","amount":10.00,"currency":"USD"}`, nil, 400, "VALIDATION_ERROR", "order.payment_instrument"},
		{"sale below minimum", "POST", "/v1/payments/sale/ABC123", saleBody("s", "0.99", "USD"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"sale above maximum", "POST", "/v1/payments/sale/ABC123", saleBody("s", "1000000000", "USD"), nil, 400, "INVALID_AMOUNT", "amount"},
		{"sale unknown currency", "POST", "/v1/payments/sale/ABC123", saleBody("s", "10.00", "XXY"), nil, 400, "VALIDATION_ERROR", "currency"},
		{"sale without merchant id", "POST", "/v1/payments/sale/ABC123", saleBody("", "10.00", "USD"), nil, 400, "VALIDATION_ERROR", "merchant_transaction_id"},
		{"sale bad card", "POST", "/v1/payments/sale/ABC123", strings.Replace(saleBody("s", "10.00", "USD"), "4111111111111111", "4111", 1), nil, 400, "VALIDATION_ERROR", "order.payment_instrument.card_number"},
		{"sale bad expiry month", "POST", "/v1/payments/sale/ABC123", strings.Replace(saleBody("s", "10.00", "USD"), `"expiry_month":12`, `"expiry_month":13`, 1), nil, 400, "VALIDATION_ERROR", "order.payment_instrument.expiry_month"},
		{"status id too short", "GET", "/v1/payments/status/ABC123/TX1", "", nil, 400, "VALIDATION_ERROR", "transaction_id"},
		{"status unknown id", "GET", "/v1/payments/status/ABC123/TXNOPE00", "", nil, 404, "TRANSACTION_NOT_FOUND", "transaction_id"},
		{"status on another terminal", "GET", "/v1/payments/status/TERM01/" + sale.TransactionID, "", nil, 404, "TRANSACTION_NOT_FOUND", "transaction_id"},
		{"unknown endpoint", "POST", "/v1/payments/payout/ABC123", "{}", nil, 404, "NOT_FOUND", ""},
		{"GET on refund", "GET", "/v1/payments/refund/ABC123", "", nil, 405, "METHOD_NOT_ALLOWED", ""},
		{"bad idempotency key", "POST", "/v1/payments/refund/ABC123", ref("1.00"), map[string]string{"Idempotency-Key": "has space"}, 400, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key"},
		{"idempotency key over 255", "POST", "/v1/payments/refund/ABC123", ref("1.00"), map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.path, tt.body, tt.hdr)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			p := r.problem(t)
			if p.ReasonCode != tt.reason || p.Status != tt.status || p.Type == "" || p.Title == "" || p.Detail == "" {
				t.Fatalf("problem %+v, want reason %s", p, tt.reason)
			}
			if p.Field() != tt.field {
				t.Fatalf("context.field %q, want %q (%s)", p.Field(), tt.field, p.Detail)
			}
		})
	}
	if n := e.ops.Len(); n != 0 {
		t.Fatalf("refused requests executed %d operations: %+v", n, e.ops.All())
	}
}

func TestHealthNeedsNoKey(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{}, "")
	for path, want := range map[string]string{"/health/": "healthy", "/health/ready": "ready", "/health/live": "alive"} {
		r := e.call("GET", path, "", map[string]string{"x-api-key": "-"})
		if r.status != 200 || !strings.Contains(string(r.body), `"status":"`+want+`"`) {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}

// TestRefundsCumulative: partial refunds add up to the original and no
// further; each refund gets its own transaction_id in the sale's order.
func TestRefundsCumulative(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{SettleAfter: -1}, "")
	sale := usdSale() // 120.00
	steps := []struct {
		amount string
		status int
	}{{"50.00", 200}, {"50.00", 200}, {"20.01", 409}, {"20", 200}, {"0.01", 409}}
	seen := map[string]bool{sale.TransactionID: true}
	for i, st := range steps {
		r := e.post("refund", "ABC123", refundBody(sale, fmt.Sprintf("r-%d", i), st.amount), fmt.Sprintf("k-%d", i))
		if r.status != st.status {
			t.Fatalf("step %d (%s): %d %s", i, st.amount, r.status, r.body)
		}
		if r.status != 200 {
			p := r.problem(t)
			if p.ReasonCode != "REFUND_EXCEEDS_ORIGINAL" || p.Context["refundable_amount"] == nil {
				t.Fatalf("step %d: %+v", i, p)
			}
			continue
		}
		p := r.payment(t)
		if !p.Accepted || len(p.TransactionID) != 8 || p.OrderID != sale.OrderID || seen[p.TransactionID] || p.MerchantTransactionID != fmt.Sprintf("r-%d", i) {
			t.Fatalf("step %d: %+v", i, p)
		}
		seen[p.TransactionID] = true
	}
	ops := e.ops.All()
	var got []string
	for _, op := range ops {
		got = append(got, op.Amount)
	}
	if strings.Join(got, ",") != "50.00,50.00,20.00" {
		t.Fatalf("executed amounts %v", got)
	}
	// A full refund (no amount) of another sale refunds exactly its amount.
	kwd := fixture("TERM01", "KWD", "sale", 0)
	r := e.post("refund", "TERM01", refundBody(kwd, "full", ""), "")
	p := r.payment(t)
	last := e.ops.All()[3]
	if last.Amount != kwd.Amount || last.Currency != "KWD" || last.IDs["transaction_id"] != p.TransactionID || last.Reference != "full" || last.IdempotencyKey != "" {
		t.Fatalf("full refund op %+v", last)
	}
}

func TestCaptureAndVoid(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{SettleAfter: -1}, "")
	p1 := fixture("ABC123", "USD", "preauth", 0) // 200.00
	p2 := fixture("ABC123", "USD", "preauth", 1) // 75.00
	voidBody := func(f smartretry.TransactionFixture) string {
		return `{"transaction_reference_id":"` + f.TransactionID + `","order_reference_id":"` + f.OrderID + `"}`
	}
	c := e.post("capture", "ABC123", refundBody(p1, "cap-1", "150.00"), "").payment(t)
	if c.OrderID != p1.OrderID || c.TransactionID == p1.TransactionID {
		t.Fatalf("capture %+v", c)
	}
	if r := e.post("capture", "ABC123", refundBody(p1, "cap-2", "10.00"), ""); r.status != 409 {
		t.Fatalf("second capture: %d", r.status)
	}
	if r := e.post("void", "ABC123", voidBody(p1), ""); r.status != 409 {
		t.Fatalf("void after capture: %d", r.status)
	}
	// The capture is refundable, up to its own amount.
	capFx := smartretry.TransactionFixture{TransactionID: c.TransactionID, OrderID: c.OrderID}
	if r := e.post("refund", "ABC123", refundBody(capFx, "cr", "150.01"), ""); r.status != 409 {
		t.Fatalf("over-refund of capture: %d", r.status)
	}
	if r := e.post("refund", "ABC123", refundBody(capFx, "cr", "150.00"), ""); r.status != 200 {
		t.Fatalf("refund of capture: %d %s", r.status, r.body)
	}
	v := e.post("void", "ABC123", voidBody(p2), "").payment(t)
	if v.MerchantTransactionID != "" || v.OrderID != p2.OrderID {
		t.Fatalf("void %+v", v)
	}
	if _, st := e.status("ABC123", p2.TransactionID); st.Status.Status != "CANCELLED" {
		t.Fatalf("voided preauth reads %+v", st.Status)
	}
	if r := e.post("capture", "ABC123", refundBody(p2, "cap", ""), ""); r.status != 409 {
		t.Fatalf("capture after void: %d", r.status)
	}
	var kinds []string
	for _, op := range e.ops.All() {
		kinds = append(kinds, op.Operation+":"+op.Amount)
	}
	if strings.Join(kinds, ",") != "capture:150.00,refund:150.00,void:75.00" {
		t.Fatalf("ops %v", kinds)
	}
}

// TestTriggersAndSettling covers the documented decline triggers and the
// PROCESSING → final move after SettleAfter.
func TestTriggersAndSettling(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{SettleAfter: 2 * time.Second}, "")
	usd := usdSale()
	jpy := fixture("ABC123", "JPY", "sale", 0)
	kwd := fixture("ABC123", "KWD", "sale", 0)
	tests := []struct {
		name, op, body        string
		accepted              bool
		before                string
		final, reason, domain string
		amount                string
	}{
		{"refund approves", "refund", refundBody(usd, "a", "25.00"), true, "PROCESSING", "APPROVED", "AUTH.APPROVED", "AUTH", "25.00"},
		{"refund .51 declines at once", "refund", refundBody(usd, "b", "1.51"), false, "DECLINED", "DECLINED", "PROCESSOR.DECLINED", "PROCESSOR", "1.51"},
		{"refund .52 declines later", "refund", refundBody(usd, "c", "1.52"), true, "PROCESSING", "DECLINED", "RISK.DECLINED", "RISK", "1.52"},
		{"refund .53 errors later", "refund", refundBody(usd, "d", "1.53"), true, "PROCESSING", "ERROR", "SYSTEM.ERROR", "SYSTEM", "1.53"},
		{"JPY 1051 declines", "refund", refundBody(jpy, "e", "1051"), false, "DECLINED", "DECLINED", "PROCESSOR.DECLINED", "PROCESSOR", "1051"},
		{"KWD 1.051 declines", "refund", refundBody(kwd, "f", "1.051"), false, "DECLINED", "DECLINED", "PROCESSOR.DECLINED", "PROCESSOR", "1.051"},
		{"KWD full refund", "refund", refundBody(fixture("ABC123", "KWD", "sale", 1), "g", ""), true, "PROCESSING", "APPROVED", "AUTH.APPROVED", "AUTH", "3.750"},
		{"sale .51 insufficient funds", "sale", saleBody("s1", "10.51", "USD"), false, "DECLINED", "DECLINED", "AUTH.INSUFFICIENT_FUNDS", "PAYER_ACCOUNT", "10.51"},
		{"sale decline card", "sale", strings.Replace(saleBody("s2", "10.00", "USD"), "4111111111111111", "4000000000000002", 1), false, "DECLINED", "DECLINED", "AUTH.CARD_DECLINED", "AUTH", "10.00"},
		{"sale approves", "sale", saleBody("s3", "1000", "JPY"), true, "PROCESSING", "APPROVED", "AUTH.APPROVED", "AUTH", "1000"},
		{"preauth .52", "preauth", saleBody("p1", "10.52", "GBP"), true, "PROCESSING", "DECLINED", "RISK.DECLINED", "RISK", "10.52"},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		r := e.post(tt.op, "ABC123", tt.body, "")
		p := r.payment(t)
		if p.Accepted != tt.accepted {
			t.Fatalf("%s: accepted %v", tt.name, p.Accepted)
		}
		ids[i] = p.TransactionID
		_, st := e.status("ABC123", p.TransactionID)
		if st.Status.Status != tt.before || string(st.Amount) != tt.amount || st.Type != tt.op {
			t.Fatalf("%s: before settling %+v amount %s", tt.name, st.Status, st.Amount)
		}
	}
	e.clock.Advance(2 * time.Second)
	for i, tt := range tests {
		_, st := e.status("ABC123", ids[i])
		if st.Status.Status != tt.final || st.Status.ReasonCode != tt.reason || st.Status.Domain != tt.domain || st.Status.Name == "" {
			t.Errorf("%s: final %+v", tt.name, st.Status)
		}
	}
	// The .52 and .53 refunds failed, so their amounts are refundable again:
	// 120.00 - 25.00 = 95.00 left.
	if r := e.post("refund", "ABC123", refundBody(usd, "rest", "95.00"), ""); r.status != 200 {
		t.Fatalf("remaining refund: %d %s", r.status, r.body)
	}
}

func TestIdempotency(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{}, "")
	sale := usdSale()
	body := refundBody(sale, "refund-001", "25.00")
	first := e.post("refund", "ABC123", body, "refund-001")
	p1 := first.payment(t)
	if first.header.Get("Idempotency-Replayed") != "false" || first.header.Get("Idempotency-Key") != "refund-001" {
		t.Fatalf("first headers %v", first.header)
	}
	wantExp := e.clock.Now().Add(24 * time.Hour).Format(time.RFC3339)
	if first.header.Get("Idempotency-Expires") != wantExp {
		t.Fatalf("expires %q want %q", first.header.Get("Idempotency-Expires"), wantExp)
	}
	tests := []struct {
		name     string
		op, body string
		key      string
		status   int
		replayed string
		reason   string
	}{
		{"same key same body replays", "refund", body, "refund-001", 200, "true", ""},
		{"same key, reordered and spaced body replays", "refund",
			`{ "amount": 25.00, "merchant_transaction_id":"refund-001", "order_reference_id":"` + sale.OrderID + `","transaction_reference_id":"` + sale.TransactionID + `" }`,
			"refund-001", 200, "true", ""},
		{"same key other amount conflicts", "refund", refundBody(sale, "refund-001", "26.00"), "refund-001", 409, "", "IDEMPOTENCY_CONFLICT"},
		{"same key, 25.0 is other text", "refund", refundBody(sale, "refund-001", "25.0"), "refund-001", 409, "", "IDEMPOTENCY_CONFLICT"},
		{"same key other endpoint conflicts", "capture", body, "refund-001", 409, "", "IDEMPOTENCY_CONFLICT"},
		{"keys are case-sensitive", "refund", body, "REFUND-001", 200, "false", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(tt.op, "ABC123", tt.body, tt.key)
			if r.status != tt.status {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if tt.reason != "" {
				if p := r.problem(t); p.ReasonCode != tt.reason {
					t.Fatalf("reason %s", p.ReasonCode)
				}
				return
			}
			if got := r.header.Get("Idempotency-Replayed"); got != tt.replayed {
				t.Fatalf("Idempotency-Replayed %q", got)
			}
			if tt.replayed == "true" {
				if string(r.body) != string(first.body) || r.header.Get("Idempotency-Expires") != wantExp {
					t.Fatalf("replay body %s (want %s), expires %s", r.body, first.body, r.header.Get("Idempotency-Expires"))
				}
			}
		})
	}
	// A stored 404 is replayed as a 404.
	nf := `{"transaction_reference_id":"TXNOPE00","order_reference_id":"` + sale.OrderID + `"}`
	a, b := e.post("refund", "ABC123", nf, "k-404"), e.post("refund", "ABC123", nf, "k-404")
	if a.status != 404 || b.status != 404 || b.header.Get("Idempotency-Replayed") != "true" || string(a.body) != string(b.body) {
		t.Fatalf("404 replay: %d %d %v", a.status, b.status, b.header)
	}
	// Executed exactly once per key.
	byKey := map[string]int{}
	for _, op := range e.ops.All() {
		byKey[op.IdempotencyKey]++
	}
	if byKey["refund-001"] != 1 || byKey["REFUND-001"] != 1 || len(byKey) != 2 {
		t.Fatalf("ops by key %v", byKey)
	}
	if e.stats.Get(sim.CountReplayed) != 3 {
		t.Fatalf("replayed = %d", e.stats.Get(sim.CountReplayed))
	}
	// After 24 h the key is forgotten: the same request executes again.
	e.clock.Advance(24 * time.Hour)
	again := e.post("refund", "ABC123", body, "refund-001")
	if p := again.payment(t); p.TransactionID == p1.TransactionID || again.header.Get("Idempotency-Replayed") != "false" {
		t.Fatalf("after expiry: %+v %v", p, again.header)
	}
}

// TestInFlight holds the first request inside the sandbox and sends the
// duplicate meanwhile.
func TestInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	hook := func(r *http.Request) {
		if r.Header.Get("Idempotency-Key") == "slow" {
			entered <- struct{}{}
			<-release
		}
	}
	e := start(t, smartretry.SandboxConfig{BeforeExecute: hook, InFlightWait: 300 * time.Millisecond}, "")
	sale := usdSale()
	body := refundBody(sale, "slow-1", "10.00")
	var wg sync.WaitGroup
	var first reply
	wg.Go(func() { first = e.post("refund", "ABC123", body, "slow") })
	<-entered

	// Different body while in flight: 409 at once.
	if r := e.post("refund", "ABC123", refundBody(sale, "slow-1", "11.00"), "slow"); r.status != 409 || r.problem(t).ReasonCode != "IDEMPOTENCY_CONFLICT" {
		t.Fatalf("conflict in flight: %d %s", r.status, r.body)
	}
	// Same body: waits InFlightWait, then 503 RESOURCE_LOCKED.
	start := time.Now()
	r := e.post("refund", "ABC123", body, "slow")
	if r.status != 503 || r.problem(t).ReasonCode != "RESOURCE_LOCKED" {
		t.Fatalf("duplicate in flight: %d %s", r.status, r.body)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("503 after %s; the sandbox must wait first", d)
	}
	// A duplicate that arrives in flight and sees the first finish within
	// the wait gets the replay.
	var second reply
	wg.Go(func() { second = e.post("refund", "ABC123", body, "slow") })
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	p := first.payment(t)
	if second.status != 200 || second.header.Get("Idempotency-Replayed") != "true" || second.payment(t) != p {
		t.Fatalf("waiting duplicate: %d %v %s", second.status, second.header, second.body)
	}
	if e.ops.Len() != 1 {
		t.Fatalf("executed %d times", e.ops.Len())
	}
}

func TestRateLimits(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{
		PaymentsLimit: paybatch.Limit{N: 3, Per: 10 * time.Second},
		StatusLimit:   paybatch.Limit{N: 5, Per: 10 * time.Second},
		OverallLimit:  paybatch.Limit{N: 7, Per: 10 * time.Second},
	}, "")
	sale := usdSale()
	reset := strconv.FormatInt(e.clock.Now().Add(10*time.Second).Unix(), 10)
	for i := range 3 {
		r := e.post("refund", "ABC123", refundBody(sale, fmt.Sprintf("rl-%d", i), "1.00"), fmt.Sprintf("rl-%d", i))
		if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "3" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) || r.header.Get("X-RateLimit-Reset") != reset {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
	}
	e.clock.Advance(3 * time.Second)
	r := e.post("refund", "ABC123", refundBody(sale, "rl-3", "1.00"), "rl-3")
	if r.status != 429 || r.header.Get("Retry-After") != "7" || r.problem(t).ReasonCode != "RATE_LIMIT_EXCEEDED" || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("4th payment: %d %v %s", r.status, r.header, r.body)
	}
	if r.problem(t).Type != "https://api.smartretry.com/errors/rate-limit" {
		t.Fatalf("type %s", r.problem(t).Type)
	}
	// Status has its own budget; problems also carry the headers.
	st, _ := e.status("ABC123", sale.TransactionID)
	if st.status != 200 || st.header.Get("X-RateLimit-Limit") != "5" || st.header.Get("X-RateLimit-Remaining") != "4" {
		t.Fatalf("status: %d %v", st.status, st.header)
	}
	nf, _ := e.status("ABC123", "TXNOPE00")
	if nf.status != 404 || nf.header.Get("X-RateLimit-Remaining") != "3" {
		t.Fatalf("404 headers %v", nf.header)
	}
	// Overall: 3 payments + 1 refused payment + 2 status = 6 spent; one left.
	e.status("ABC123", sale.TransactionID)
	over, _ := e.status("ABC123", sale.TransactionID)
	if over.status != 429 || over.header.Get("X-RateLimit-Limit") != "7" {
		t.Fatalf("overall: %d %v", over.status, over.header)
	}
	if got := e.stats.Get(sim.CountRateLimited); got != 2 {
		t.Fatalf("rate_limited = %d", got)
	}
	// The 429 was not stored: after the window the same key executes.
	e.clock.Advance(7 * time.Second)
	r = e.post("refund", "ABC123", refundBody(sale, "rl-3", "1.00"), "rl-3")
	if r.status != 200 || r.header.Get("Idempotency-Replayed") != "false" {
		t.Fatalf("after window: %d %v", r.status, r.header)
	}
	// Other keys have their own budget.
	if e.ops.Len() != 4 {
		t.Fatalf("ops %d", e.ops.Len())
	}
}

// TestFaults: each fault kind against the SmartRetry sandbox.
func TestFaults(t *testing.T) {
	sale := usdSale()
	tests := []struct {
		spec      string
		transport bool // the client sees no response
		status    int
		executed  int
		counter   string
	}{
		{"5xx=1", false, 0, 0, sim.CountFault5xx},
		{"reset=1", true, 0, 0, sim.CountFaultReset},
		{"lost=1", true, 0, 1, sim.CountFaultLost},
		{"hang=1", true, 0, 0, sim.CountFaultHang},
		{"latency=40ms±10ms", false, 200, 1, sim.CountFaultLatency},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			e := start(t, smartretry.SandboxConfig{}, tt.spec)
			e.hc = &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
			req, _ := http.NewRequest("POST", e.url+"/v1/payments/refund/ABC123", strings.NewReader(refundBody(sale, "f-1", "5.00")))
			req.Header.Set("x-api-key", smartretry.TestAPIKey)
			req.Header.Set("Idempotency-Key", "fault-1")
			resp, err := e.hc.Do(req)
			if tt.transport {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("want a dropped connection, got %d", resp.StatusCode)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if tt.status != 0 && resp.StatusCode != tt.status || tt.status == 0 && resp.StatusCode < 500 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			if e.ops.Len() != tt.executed || e.stats.Get(tt.counter) != 1 {
				t.Fatalf("executed %d (want %d), %s=%d", e.ops.Len(), tt.executed, tt.counter, e.stats.Get(tt.counter))
			}
			if tt.executed == 1 {
				op := e.ops.All()[0]
				if op.IdempotencyKey != "fault-1" || op.Reference != "f-1" || op.Amount != "5.00" {
					t.Fatalf("op %+v", op)
				}
			}
		})
	}
}

// TestLostThenRetryReplays is the double-charge case: the response is lost,
// the client retries with the same key and gets the stored answer.
func TestLostThenRetryReplays(t *testing.T) {
	// Seed 1 draws lost for the first request and not for the second with
	// these odds (asserted below, so a change in the draw order shows).
	e := start(t, smartretry.SandboxConfig{}, "lost=0.5")
	e.hc = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	sale := usdSale()
	body := refundBody(sale, "lost-1", "7.00")
	var outcomes []string
	var final reply
	for range 10 {
		req, _ := http.NewRequest("POST", e.url+"/v1/payments/refund/ABC123", strings.NewReader(body))
		req.Header.Set("x-api-key", smartretry.TestAPIKey)
		req.Header.Set("Idempotency-Key", "lost-key")
		resp, err := e.hc.Do(req)
		if err != nil {
			outcomes = append(outcomes, "lost")
			continue
		}
		final = reply{status: resp.StatusCode, header: resp.Header}
		resp.Body.Close()
		outcomes = append(outcomes, resp.Header.Get("Idempotency-Replayed"))
		break
	}
	if len(outcomes) < 2 || outcomes[0] != "lost" || outcomes[len(outcomes)-1] != "true" {
		t.Fatalf("outcomes %v (seeded: want lost first, then a replay)", outcomes)
	}
	if final.status != 200 || e.ops.Len() != 1 {
		t.Fatalf("final %d, executed %d", final.status, e.ops.Len())
	}
}

func TestResetRestoresFixtures(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{SettleAfter: -1}, "")
	sale := usdSale()
	e.post("refund", "ABC123", refundBody(sale, "x", ""), "full")
	if r := e.post("refund", "ABC123", refundBody(sale, "y", "1.00"), ""); r.status != 409 {
		t.Fatalf("after full refund: %d", r.status)
	}
	e.sb.Reset()
	if r := e.post("refund", "ABC123", refundBody(sale, "y", "1.00"), "full"); r.status != 200 || r.header.Get("Idempotency-Replayed") != "false" {
		t.Fatalf("after reset: %d %v", r.status, r.header)
	}
}

func TestFixturesValidate(t *testing.T) {
	if err := smartretry.ValidateFixtures(smartretry.DefaultFixtures()); err != nil {
		t.Fatal(err)
	}
	bad := []smartretry.TransactionFixture{
		{TransactionID: "TX1", OrderID: "ORS00001", Terminal: "ABC123", Type: "sale", Amount: "1.00", Currency: "USD"},
		{TransactionID: "TXS00001", OrderID: "ORS00001", Terminal: "ABC123", Type: "refund", Amount: "1.00", Currency: "USD"},
		{TransactionID: "TXS00001", OrderID: "ORS00001", Terminal: "ABC123", Type: "sale", Amount: "1.001", Currency: "USD"},
		{TransactionID: "TXS00001", OrderID: "ORS00001", Terminal: "ABC12", Type: "sale", Amount: "1.00", Currency: "USD"},
		{TransactionID: "TXS00001", OrderID: "ORS00001", Terminal: "ABC123", Type: "sale", Amount: "1.00", Currency: "USD", Status: "MAYBE"},
	}
	for _, f := range bad {
		if err := smartretry.ValidateFixtures([]smartretry.TransactionFixture{f}); err == nil {
			t.Errorf("fixture %+v: want error", f)
		}
	}
	dup := []smartretry.TransactionFixture{usdSale(), usdSale()}
	if err := smartretry.ValidateFixtures(dup); err == nil {
		t.Error("duplicate ids: want error")
	}
}

// TestFault5xxNotStored: an injected 5xx did no work and stored nothing, so
// the retry under the same key executes (once) and is not a replay.
func TestFault5xxNotStored(t *testing.T) {
	e := start(t, smartretry.SandboxConfig{}, "5xx=0.6")
	sale := usdSale()
	body := refundBody(sale, "five-1", "4.00")
	var codes []int
	var last reply
	for range 20 {
		last = e.post("refund", "ABC123", body, "five-key")
		codes = append(codes, last.status)
		if last.status == 200 {
			break
		}
	}
	if len(codes) < 2 || codes[0] < 500 || last.status != 200 || last.header.Get("Idempotency-Replayed") != "false" {
		t.Fatalf("codes %v (seeded: want a 5xx first), last %v", codes, last.header)
	}
	again := e.post("refund", "ABC123", body, "five-key")
	for again.status >= 500 {
		again = e.post("refund", "ABC123", body, "five-key")
	}
	if again.header.Get("Idempotency-Replayed") != "true" || e.ops.Len() != 1 {
		t.Fatalf("after success: %v, executed %d", again.header, e.ops.Len())
	}
}
