package smarterpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/paybatch/paybatch"
)

// DefaultBaseURL is the production SmarterPay Cloud REST base.
const DefaultBaseURL = "https://api.smarterpaycloud.com/service.svc"

// DefaultRetryAfter is the wait for a 429 without a Retry-After header: the
// documented message says "Please try again in 60 seconds."
const DefaultRetryAfter = 60 * time.Second

const maxResponse = 16 << 20

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL defaults to DefaultBaseURL. It must be https://, or http://
	// when the host is loopback (the sandbox).
	BaseURL string
	// Token is the bearer token. It is secret: it never appears in errors,
	// logs or String().
	Token string
	// HTTPClient defaults to a client with connect, header and overall
	// timeouts that never follows redirects.
	HTTPClient *http.Client
	// OnRate, when set, is called with the rate-limit headers of every
	// response that carries them (X-RateLimit-Limit/-Remaining/-Reset; the
	// real API documents none, the sandbox sends them).
	OnRate func(paybatch.RateInfo)
}

// String never shows the token.
func (c ClientConfig) String() string {
	tok := "unset"
	if c.Token != "" {
		tok = "set"
	}
	return fmt.Sprintf("smarterpay.ClientConfig{BaseURL: %q, Token: %s}", c.BaseURL, tok)
}

// GoString never shows the token (%#v).
func (c ClientConfig) GoString() string { return c.String() }

// Client speaks the SmarterPay Cloud payment and credit API.
type Client struct {
	base   string // without trailing slash
	token  string
	hc     *http.Client
	onRate func(paybatch.RateInfo)
	// reached is set once the endpoint has answered as SmarterPay does; a
	// refused connection before that is a wrong URL, after it an outage.
	reached atomic.Bool
}

// NewClient validates cfg and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := paybatch.ParseEndpoint(base)
	if err != nil {
		return nil, fmt.Errorf("smarterpay: base URL: %w", err)
	}
	if cfg.Token == "" {
		return nil, errors.New("smarterpay: no bearer token (set it from the environment)")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		tr.ResponseHeaderTimeout = 30 * time.Second
		hc = &http.Client{
			Transport: tr,
			Timeout:   60 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: cfg.Token, hc: hc, onRate: cfg.OnRate}, nil
}

// String never shows the token.
func (c *Client) String() string { return "smarterpay.Client{" + c.base + "}" }

// paymentEnvelope and creditEnvelope fix the canonical request shape.
type paymentEnvelope struct {
	Payment PaymentRequest `json:"payment"`
}

type creditEnvelope struct {
	Credit CreditRequest `json:"credit"`
}

// PenceOf converts a GBP amount to whole pence exactly.
func PenceOf(m paybatch.Money) (int64, error) {
	if m.Currency.Code() != "GBP" {
		return 0, fmt.Errorf("%w: SmarterPay (Bacs) moves GBP only, got %q", paybatch.ErrBadCurrency, m.Currency.Code())
	}
	if m.Currency.Exponent() != 2 {
		return 0, fmt.Errorf("%w: GBP with exponent %d", paybatch.ErrBadCurrency, m.Currency.Exponent())
	}
	if m.Minor <= 0 {
		return 0, fmt.Errorf("%w: amount %s must be positive", paybatch.ErrBadAmount, m)
	}
	return m.Minor, nil
}

// Prepare builds the canonical request for a dd-payment (POST /payment
// {"payment":{…}}) or dd-credit (POST /credit {"credit":{…}}). The same
// instruction always yields the same bytes. MerchantTxID travels as the
// payment's custom_reference / the credit's reference (SmarterPay has no
// merchant_transaction_id; these are its documented free references, echoed
// in responses and webhooks).
func (c *Client) Prepare(in paybatch.Instruction) (paybatch.Request, error) {
	pence, err := PenceOf(in.Amount)
	if err != nil {
		return paybatch.Request{}, fmt.Errorf("smarterpay: %s %q: %w", in.Kind, in.MerchantTxID, err)
	}
	if in.CollectionDate.IsZero() {
		return paybatch.Request{}, fmt.Errorf("smarterpay: %s %q: %w: collection/credit date is required", in.Kind, in.MerchantTxID, paybatch.ErrMissingField)
	}
	date := in.CollectionDate.Format(DateLayout)
	var body any
	var path string
	switch in.Kind {
	case paybatch.KindDDPayment:
		if in.Mandate == "" && in.Auddis == "" {
			return paybatch.Request{}, fmt.Errorf("smarterpay: dd-payment %q: %w: mandate or auddis is required", in.MerchantTxID, paybatch.ErrMissingField)
		}
		path = "/payment"
		body = paymentEnvelope{PaymentRequest{Mandate: in.Mandate, Auddis: in.Auddis, Amount: Pence(pence),
			CollectionDate: date, Description: in.Description, CustomReference: in.MerchantTxID,
			DefaultNarrative: in.DefaultNarrative}}
	case paybatch.KindDDCredit:
		if in.Auddis == "" && in.BankAccount == "" {
			return paybatch.Request{}, fmt.Errorf("smarterpay: dd-credit %q: %w: auddis or bank account is required", in.MerchantTxID, paybatch.ErrMissingField)
		}
		path = "/credit"
		body = creditEnvelope{CreditRequest{Auddis: in.Auddis, BankAccount: in.BankAccount, Amount: Pence(pence),
			Description: in.Description, CreditDate: date, DefaultNarrative: in.DefaultNarrative, Reference: in.MerchantTxID}}
	default:
		return paybatch.Request{}, fmt.Errorf("smarterpay: kind %q is not a SmarterPay operation (want dd-payment or dd-credit)", in.Kind)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return paybatch.Request{}, fmt.Errorf("smarterpay: encoding %s %q: %w", in.Kind, in.MerchantTxID, err)
	}
	return paybatch.Request{Method: http.MethodPost, Path: path, Body: b}, nil
}

// Send posts req under the idempotency key (none when key is ""). Every
// error is a *paybatch.ProviderError.
func (c *Client) Send(ctx context.Context, req paybatch.Request, key string) (paybatch.Submission, error) {
	if len(key) > MaxKeyLen {
		return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassRejected,
			Err: fmt.Errorf("smarterpay: idempotency key is %d characters; at most %d allowed", len(key), MaxKeyLen)}
	}
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	status, hdr, body, perr := c.do(ctx, method, req.Path, req.Body, key)
	if perr != nil {
		return paybatch.Submission{}, perr
	}
	sub, err := decodeRecord(req.Path, body)
	if err != nil {
		return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: status,
			Err: fmt.Errorf("smarterpay: %s %s: undecodable %d response: %w", method, req.Path, status, err)}
	}
	sub.HTTPStatus = status
	sub.Replayed = strings.EqualFold(hdr.Get("idempotency-replay"), "true")
	return sub, nil
}

// Status fetches a payment (ref.Kind dd-payment) or credit (dd-credit).
func (c *Client) Status(ctx context.Context, ref paybatch.ProviderRef) (paybatch.ProviderStatus, error) {
	res, err := resourceFor(ref.Kind)
	if err != nil {
		return paybatch.ProviderStatus{}, &paybatch.ProviderError{Class: paybatch.ClassRejected, Err: err}
	}
	if ref.ID == "" {
		return paybatch.ProviderStatus{}, &paybatch.ProviderError{Class: paybatch.ClassRejected, Err: errors.New("smarterpay: status: empty id")}
	}
	path := res + "/" + url.PathEscape(ref.ID)
	status, _, body, perr := c.do(ctx, http.MethodGet, path, nil, "")
	if perr != nil {
		return paybatch.ProviderStatus{}, perr
	}
	sub, err := decodeRecord(path, body)
	if err != nil {
		return paybatch.ProviderStatus{}, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: status,
			Err: fmt.Errorf("smarterpay: GET %s: %w", path, err)}
	}
	return *sub.Status, nil
}

// Lookup finds the payment (custom_reference) or credit (reference) that
// carries in.MerchantTxID. It returns nil, nil when there is none, and a
// ClassConflict error when several carry it.
func (c *Client) Lookup(ctx context.Context, in paybatch.Instruction) (*paybatch.Submission, error) {
	res, err := resourceFor(in.Kind)
	if err != nil {
		return nil, &paybatch.ProviderError{Class: paybatch.ClassRejected, Err: err}
	}
	if in.MerchantTxID == "" {
		return nil, &paybatch.ProviderError{Class: paybatch.ClassRejected, Err: errors.New("smarterpay: lookup: empty merchant_transaction_id")}
	}
	q := url.Values{}
	if res == "/payment" {
		q.Set("custom_reference", in.MerchantTxID)
	} else {
		q.Set("reference", in.MerchantTxID)
	}
	status, _, body, perr := c.do(ctx, http.MethodGet, res+"?"+q.Encode(), nil, "")
	if perr != nil {
		return nil, perr
	}
	var raws []json.RawMessage
	var env map[string][]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: status,
			Err: fmt.Errorf("smarterpay: lookup %q: %w", in.MerchantTxID, err)}
	}
	if res == "/payment" {
		raws = env["payments"]
	} else {
		raws = env["credits"]
	}
	switch len(raws) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, &paybatch.ProviderError{Class: paybatch.ClassConflict, HTTPStatus: status,
			Problem: paybatch.Problem{Status: status, Detail: fmt.Sprintf("%d records carry reference %q", len(raws), in.MerchantTxID)}}
	}
	sub, err := decodeOne(res, raws[0])
	if err != nil {
		return nil, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: status,
			Err: fmt.Errorf("smarterpay: lookup %q: %w", in.MerchantTxID, err)}
	}
	sub.HTTPStatus = status
	return &sub, nil
}

func resourceFor(k paybatch.Kind) (string, error) {
	switch k {
	case paybatch.KindDDPayment:
		return "/payment", nil
	case paybatch.KindDDCredit:
		return "/credit", nil
	}
	return "", fmt.Errorf("smarterpay: kind %q is not a SmarterPay operation", k)
}

// do performs one exchange. A non-2xx answer or a transport failure comes
// back as a classified *paybatch.ProviderError.
func (c *Client) do(ctx context.Context, method, path string, body []byte, key string) (int, http.Header, []byte, *paybatch.ProviderError) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, nil, &paybatch.ProviderError{Class: paybatch.ClassRejected, Err: fmt.Errorf("smarterpay: %s %s: %w", method, path, err)}
	}
	hreq.Header.Set("Authorization", "Bearer "+c.token)
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("Accept-Charset", "utf-8")
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		hreq.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(hreq)
	if err != nil { // the error names the URL, never the token (it travels only in the Authorization header)
		if why := paybatch.EndpointFault(err, !c.reached.Load()); why != "" {
			return 0, nil, nil, &paybatch.ProviderError{Class: paybatch.ClassConfig,
				Err: fmt.Errorf("smarterpay: %s %s: cannot reach %s: %s", method, path, c.base, why)}
		}
		return 0, nil, nil, &paybatch.ProviderError{Class: paybatch.ClassTransient, Err: fmt.Errorf("smarterpay: %s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: resp.StatusCode,
			Err: fmt.Errorf("smarterpay: %s %s: reading response: %w", method, path, err)}
	}
	c.reportRate(resp.Header, method == http.MethodGet)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if notJSON(resp.Header, data) {
			return 0, nil, nil, c.notTheAPI(method, path, resp.StatusCode, "an HTML or other non-JSON page")
		}
		c.reached.Store(true)
		return resp.StatusCode, resp.Header, data, nil
	}
	pe := &paybatch.ProviderError{Class: classify(resp.StatusCode), HTTPStatus: resp.StatusCode, Problem: problemOf(resp.StatusCode, data)}
	switch code := resp.StatusCode; {
	case code/100 == 3:
		return 0, nil, nil, c.notTheAPI(method, path, code,
			fmt.Sprintf("a redirect (HTTP %d) to %q, which paybatch never follows", code, resp.Header.Get("Location")))
	case code/100 == 4 && classify(code) != paybatch.ClassRateLimited && classify(code) != paybatch.ClassAuth && !isErrorBody(data):
		return 0, nil, nil, c.notTheAPI(method, path, code, fmt.Sprintf("HTTP %d without a SmarterPay error body", code))
	}
	c.reached.Store(true)
	if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		pe.RetryAfter = ra
	} else if resp.StatusCode == http.StatusTooManyRequests {
		pe.RetryAfter = DefaultRetryAfter
	}
	return resp.StatusCode, resp.Header, nil, pe
}

// notTheAPI is the ClassConfig error for an answer that did not come from
// the SmarterPay API: most often a base URL without /service.svc.
func (c *Client) notTheAPI(method, path string, status int, what string) *paybatch.ProviderError {
	hint := ""
	if !strings.HasSuffix(c.base, BasePath) {
		hint = " — the base URL must end in " + BasePath
	}
	return &paybatch.ProviderError{Class: paybatch.ClassConfig, HTTPStatus: status,
		Err: fmt.Errorf("smarterpay: %s %s answered %s: %s is not the SmarterPay API%s (e.g. %s)",
			method, path, what, c.base, hint, DefaultBaseURL)}
}

// notJSON reports whether a 2xx body is plainly not the API's JSON: an
// HTML page or another non-JSON media type (a web server at the wrong URL).
func notJSON(h http.Header, body []byte) bool {
	if strings.Contains(strings.ToLower(h.Get("Content-Type")), "html") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '<'
}

// isErrorBody reports whether a 4xx body is SmarterPay's error object
// (ErrorBody: a code or a message) rather than some other server's page.
func isErrorBody(data []byte) bool {
	var b struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		ReasonCode string `json:"reason_code"`
	}
	return json.Unmarshal(data, &b) == nil && (b.Code != "" || b.Message != "" || b.ReasonCode != "")
}

func classify(code int) paybatch.ErrorClass {
	switch {
	case code == http.StatusTooManyRequests:
		return paybatch.ClassRateLimited
	case code == http.StatusConflict, code >= 500:
		return paybatch.ClassTransient
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == 498:
		return paybatch.ClassAuth
	case code == http.StatusUnprocessableEntity:
		return paybatch.ClassConflict
	}
	return paybatch.ClassRejected
}

// problemOf reads the sandbox's ErrorBody, an RFC 7807 body (the fault
// middleware's 5xx) or plain text into a Problem.
func problemOf(code int, data []byte) paybatch.Problem {
	var b struct {
		Status     int    `json:"status"`
		Error      string `json:"error"`
		Code       string `json:"code"`
		Message    string `json:"message"`
		Field      string `json:"field"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Detail     string `json:"detail"`
		ReasonCode string `json:"reason_code"`
	}
	p := paybatch.Problem{Status: code}
	if err := json.Unmarshal(data, &b); err != nil {
		p.Title, p.Detail = http.StatusText(code), paybatch.Excerpt(bytes.TrimSpace(data), 200)
		return p
	}
	p.Type = b.Type
	p.Title = first(b.Error, b.Title, http.StatusText(code))
	p.Detail = first(b.Message, b.Detail)
	p.ReasonCode = first(b.Code, b.ReasonCode)
	p.Field = b.Field
	return p
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// retryAfter parses delta-seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

func (c *Client) reportRate(h http.Header, query bool) {
	if c.onRate == nil || h.Get("X-RateLimit-Limit") == "" {
		return
	}
	ri := paybatch.RateInfo{Known: true, Query: query}
	ri.Limit, _ = strconv.Atoi(h.Get("X-RateLimit-Limit"))
	ri.Remaining, _ = strconv.Atoi(h.Get("X-RateLimit-Remaining"))
	if r, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		if r > 1_000_000_000 { // epoch seconds
			ri.Reset = time.Unix(r, 0)
		} else { // seconds from now
			ri.Reset = time.Now().Add(time.Duration(r) * time.Second)
		}
	}
	c.onRate(ri)
}

// decodeRecord decodes {"payment":{…}} or {"credit":{…}} by the request path.
func decodeRecord(path string, body []byte) (paybatch.Submission, error) {
	res := "/payment"
	if strings.HasPrefix(path, "/credit") {
		res = "/credit"
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		return paybatch.Submission{}, err
	}
	raw, ok := env[strings.TrimPrefix(res, "/")]
	if !ok {
		return paybatch.Submission{}, fmt.Errorf("response has no %q object", strings.TrimPrefix(res, "/"))
	}
	return decodeOne(res, raw)
}

// record is the subset of a payment or credit the client reads. Amount is
// Pence, which accepts "2532" and 2532 and never goes through float64.
type record struct {
	ID              string `json:"id"`
	Amount          *Pence `json:"amount"`
	Status          string `json:"status"`
	CollectionDate  string `json:"collection_date"`
	CreditDate      string `json:"credit_date"`
	BacsReport      string `json:"bacs_report"`
	BacsReasonCode  string `json:"bacs_reason_code"`
	BacsDescription string `json:"bacs_description"`
}

func decodeOne(res string, raw json.RawMessage) (paybatch.Submission, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return paybatch.Submission{}, err
	}
	if r.ID == "" {
		return paybatch.Submission{}, errors.New("record has no id")
	}
	st := statusOf(r)
	sub := paybatch.Submission{Accepted: true, ProviderID: r.ID, Status: &st}
	if r.Amount != nil {
		m := paybatch.Money{Currency: paybatch.MustCurrency("GBP"), Minor: int64(*r.Amount)}
		sub.Amount = &m
		st.Amount = &m
	}
	date := r.CollectionDate
	if res == "/credit" {
		date = r.CreditDate
	}
	if date != "" {
		d, err := ParseDate(date)
		if err != nil {
			return paybatch.Submission{}, err
		}
		sub.Date, st.Date = d, d
	}
	return sub, nil
}

func statusOf(r record) paybatch.ProviderStatus {
	ps := paybatch.ProviderStatus{Raw: r.Status}
	switch r.Status {
	case StatusSuccessful:
		ps.Outcome = paybatch.OutcomeSucceeded
	case StatusFailed, StatusCancelled:
		ps.Outcome = paybatch.OutcomeFailed
		if r.Status == StatusCancelled {
			ps.Outcome = paybatch.OutcomeCancelled
		}
		// The reason is the Bacs report and code ("ARUDD 0"), described by
		// the provider or, when it gives no text, by the Bacs standard.
		if r.BacsReasonCode != "" {
			report := r.BacsReport
			if strings.EqualFold(report, "ARRUD") {
				report = ReportARUDD
			}
			ps.ReasonCode = strings.TrimSpace(report + " " + r.BacsReasonCode)
			ps.Domain = report
			ps.Detail = first(strings.TrimSpace(r.BacsDescription), BacsReason(report, r.BacsReasonCode))
		}
	default: // pending_submission, submitted, or a status this client does not know: keep polling
		ps.Outcome = paybatch.OutcomePending
	}
	return ps
}

// Probe checks the endpoint and the bearer token with a harmless read — a
// payment list filtered by a reference no payment carries — and moves no
// money. It returns nil, or a *paybatch.ProviderError: ClassConfig when the
// endpoint is not the SmarterPay API, ClassAuth when the token is refused.
func (c *Client) Probe(ctx context.Context, _ ...string) error {
	_, err := c.Lookup(ctx, paybatch.Instruction{Kind: paybatch.KindDDPayment, MerchantTxID: "paybatch-endpoint-probe"})
	return err
}
