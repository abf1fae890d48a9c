package smartretry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/paybatch/paybatch"
)

// DefaultBaseURL is the production SmartRetry API.
const DefaultBaseURL = "https://api.smartretry.com"

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL defaults to https://api.smartretry.com; plain http is allowed
	// only to a loopback host.
	BaseURL string
	// APIKey is sent as x-api-key. It is a secret: it never appears in
	// errors, logs or String().
	APIKey string
	// HTTPClient nil → a client with sane timeouts.
	HTTPClient *http.Client
	// OnRate, when set, is called with each response's X-RateLimit-* headers.
	OnRate func(paybatch.RateInfo)
}

// Client talks to the SmartRetry API. Safe for concurrent use.
type Client struct {
	base   *url.URL
	apiKey string
	hc     *http.Client
	onRate func(paybatch.RateInfo)
	// reached is set once the endpoint has answered as SmartRetry does; a
	// refused connection before that is a wrong URL, after it an outage.
	reached atomic.Bool
}

// NewClient validates cfg and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	u, err := paybatch.ParseEndpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("smartretry: base URL: %w", err)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("smartretry: no API key (set it in the environment)")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: 25 * time.Second,
				IdleConnTimeout:       90 * time.Second,
				MaxIdleConns:          256,
				MaxIdleConnsPerHost:   256,
				ForceAttemptHTTP2:     true,
			},
			// Never follow a redirect: it would carry x-api-key to wherever it
			// points (Go strips only Authorization and Cookie across hosts).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Client{base: u, apiKey: cfg.APIKey, hc: hc, onRate: cfg.OnRate}, nil
}

// String describes the client without its API key.
func (c *Client) String() string { return "smartretry client for " + c.base.String() }

// GoString keeps the key out of %#v as well.
func (c *Client) GoString() string { return c.String() }

// Prepare turns a refund, capture or void instruction into the canonical
// request: fixed field order, the amount as a JSON number with exactly the
// currency's decimals (from Money.String, never a float). A zero amount on
// a refund or capture is omitted, which means "the full original amount".
func (c *Client) Prepare(in paybatch.Instruction) (paybatch.Request, error) {
	if in.Provider != "" && in.Provider != paybatch.SmartRetry {
		return paybatch.Request{}, fmt.Errorf("%w: provider %q is not smartretry", paybatch.ErrBadField, in.Provider)
	}
	if !ValidTerminal(in.Terminal) {
		return paybatch.Request{}, fmt.Errorf("%w: terminal %q must be exactly 6 letters or digits", paybatch.ErrBadField, in.Terminal)
	}
	if !ValidID(in.TransactionRef) {
		return paybatch.Request{}, fmt.Errorf("%w: transaction_reference_id %q must be exactly 8 letters or digits", paybatch.ErrBadField, in.TransactionRef)
	}
	if !ValidID(in.OrderRef) {
		return paybatch.Request{}, fmt.Errorf("%w: order_reference_id %q must be exactly 8 letters or digits", paybatch.ErrBadField, in.OrderRef)
	}
	if len(in.MerchantTxID) > 100 {
		return paybatch.Request{}, fmt.Errorf("%w: merchant_transaction_id is longer than 100 characters", paybatch.ErrBadField)
	}
	if in.Amount.Minor < 0 {
		return paybatch.Request{}, fmt.Errorf("%w: negative amount %s", paybatch.ErrBadAmount, in.Amount)
	}
	var b bytes.Buffer
	field := func(name, value string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(name)
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(value)
	}
	str := func(s string) string { v, _ := json.Marshal(s); return string(v) }
	b.WriteByte('{')
	field("transaction_reference_id", str(in.TransactionRef))
	field("order_reference_id", str(in.OrderRef))
	var op string
	switch in.Kind {
	case paybatch.KindRefund, paybatch.KindCapture:
		op = TypeRefund
		if in.Kind == paybatch.KindCapture {
			op = TypeCapture
		}
		if in.MerchantTxID != "" {
			field("merchant_transaction_id", str(in.MerchantTxID))
		}
		if in.Amount.Minor > 0 {
			if in.Amount.Currency.IsZero() {
				return paybatch.Request{}, fmt.Errorf("%w: amount %d has no currency", paybatch.ErrBadCurrency, in.Amount.Minor)
			}
			field("amount", in.Amount.String())
			if op == TypeRefund {
				field("currency", str(in.Amount.Currency.Code()))
			}
		}
	case paybatch.KindVoid:
		op = TypeVoid // a void carries neither amount nor merchant_transaction_id
	default:
		return paybatch.Request{}, fmt.Errorf("%w: kind %q is not a SmartRetry operation (refund, capture, void)", paybatch.ErrBadField, in.Kind)
	}
	b.WriteByte('}')
	return paybatch.Request{
		Method: http.MethodPost,
		Path:   "/v1/payments/" + op + "/" + in.Terminal,
		Body:   b.Bytes(),
	}, nil
}

// Send posts req under the idempotency key. Every error is a
// *paybatch.ProviderError classified for the submission engine. A decline
// (200 "accepted": false) is a Submission with Accepted false, not an error.
func (c *Client) Send(ctx context.Context, req paybatch.Request, key string) (paybatch.Submission, error) {
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	hreq, err := c.newRequest(ctx, method, req.Path, req.Body)
	if err != nil {
		return paybatch.Submission{}, err
	}
	if key != "" {
		hreq.Header.Set("Idempotency-Key", key)
	}
	status, hdr, body, perr := c.do(hreq)
	if perr != nil {
		return paybatch.Submission{}, perr
	}
	var pr PaymentResponse
	if notJSON(hdr, body) {
		return paybatch.Submission{}, c.notTheAPI(method, req.Path, status, "an HTML or other non-JSON page")
	}
	if err := json.Unmarshal(body, &pr); err != nil || pr.TransactionID == "" {
		if err == nil {
			err = errors.New("no transaction_id in the response")
		}
		// The operation may have run: retrying under the same key is safe.
		return paybatch.Submission{}, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: status,
			Err: fmt.Errorf("smartretry: unreadable %d response to %s %s: %w", status, method, req.Path, err)}
	}
	replayed := hdr.Get("Idempotency-Replayed")
	if replayed == "" {
		replayed = hdr.Get("X-Idempotency-Replayed")
	}
	sub := paybatch.Submission{
		HTTPStatus: status,
		Accepted:   pr.Accepted,
		ProviderID: pr.TransactionID,
		OrderID:    pr.OrderID,
		Replayed:   strings.EqualFold(replayed, "true"),
	}
	if !pr.Accepted {
		// A decline's acknowledgement carries no reason: its status does
		// (reasonCode and description). Without it the decline still
		// stands; only its reason is missing.
		terminal := req.Path[strings.LastIndexByte(req.Path, '/')+1:]
		st, err := c.Status(ctx, paybatch.ProviderRef{Terminal: terminal, ID: pr.TransactionID})
		var pe *paybatch.ProviderError
		switch {
		case err == nil:
			sub.Status = &st
		case errors.As(err, &pe) && (pe.Class == paybatch.ClassTransient || pe.Class == paybatch.ClassRateLimited):
			// Retrying the send under the same key replays the decline and
			// asks again, so a passing fault never loses the reason.
			return paybatch.Submission{}, err
		}
	}
	return sub, nil
}

// Status reads the status of an executed operation.
func (c *Client) Status(ctx context.Context, ref paybatch.ProviderRef) (paybatch.ProviderStatus, error) {
	if !ValidTerminal(ref.Terminal) || !ValidID(ref.ID) {
		return paybatch.ProviderStatus{}, &paybatch.ProviderError{Class: paybatch.ClassRejected,
			Err: fmt.Errorf("smartretry: status of %q on terminal %q: want an 8-character transaction_id and a 6-character terminal", ref.ID, ref.Terminal)}
	}
	hreq, err := c.newRequest(ctx, http.MethodGet, "/v1/payments/status/"+ref.Terminal+"/"+ref.ID, nil)
	if err != nil {
		return paybatch.ProviderStatus{}, err
	}
	status, hdr, body, perr := c.do(hreq)
	if perr != nil {
		return paybatch.ProviderStatus{}, perr
	}
	if notJSON(hdr, body) {
		return paybatch.ProviderStatus{}, c.notTheAPI(http.MethodGet, hreq.URL.Path, status, "an HTML or other non-JSON page")
	}
	var sr StatusResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&sr); err != nil {
		return paybatch.ProviderStatus{}, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: status,
			Err: fmt.Errorf("smartretry: unreadable status of %s: %w", ref.ID, err)}
	}
	ps := paybatch.ProviderStatus{
		Raw: sr.Status.Status, Outcome: MapStatus(sr.Status.Status),
		ReasonCode: sr.Status.ReasonCode, Domain: sr.Status.Domain, Detail: first(sr.Status.Description, sr.Status.Name),
	}
	if ps.Outcome == paybatch.OutcomeSucceeded || ps.Outcome == paybatch.OutcomePending {
		// AUTH.APPROVED is not a reason; a pending status has none yet.
		ps.ReasonCode, ps.Domain, ps.Detail = "", "", ""
	}
	if sr.Amount != "" && sr.Currency != "" {
		cur, err := paybatch.ParseCurrency(sr.Currency)
		if err == nil {
			m, err := paybatch.ParseMoney(string(sr.Amount), cur)
			if err == nil {
				ps.Amount = &m
			} else if ps.Detail == "" {
				ps.Detail = "unreadable amount: " + err.Error()
			}
		}
	}
	return ps, nil
}

// MapStatus normalises a SmartRetry status value.
func MapStatus(s string) paybatch.Outcome {
	switch s {
	case StatusApproved:
		return paybatch.OutcomeSucceeded
	case StatusDeclined, StatusError:
		return paybatch.OutcomeFailed
	case StatusCancelled:
		return paybatch.OutcomeCancelled
	}
	return paybatch.OutcomePending // PROCESSING, UNKNOWN and anything new
}

func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, &paybatch.ProviderError{Class: paybatch.ClassRejected, Err: fmt.Errorf("smartretry: path %q must start with /", path)}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return nil, &paybatch.ProviderError{Class: paybatch.ClassRejected, Err: fmt.Errorf("smartretry: %s %s: %w", method, path, err)}
	}
	hreq.Header.Set("x-api-key", c.apiKey)
	hreq.Header.Set("Accept", "application/json")
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	return hreq, nil
}

// do runs the exchange and turns every non-200 into a classified
// *paybatch.ProviderError.
func (c *Client) do(hreq *http.Request) (int, http.Header, []byte, error) {
	resp, err := c.hc.Do(hreq)
	if err != nil {
		if why := paybatch.EndpointFault(err, !c.reached.Load()); why != "" {
			return 0, nil, nil, &paybatch.ProviderError{Class: paybatch.ClassConfig,
				Err: fmt.Errorf("smartretry: %s %s: cannot reach %s: %s", hreq.Method, hreq.URL.Path, c.base, why)}
		}
		return 0, nil, nil, &paybatch.ProviderError{Class: paybatch.ClassTransient,
			Err: fmt.Errorf("smartretry: %s %s: %w", hreq.Method, hreq.URL.Path, stripURL(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	c.reportRate(resp.Header, hreq.Method == http.MethodGet)
	if err != nil {
		return 0, nil, nil, &paybatch.ProviderError{Class: paybatch.ClassTransient, HTTPStatus: resp.StatusCode,
			Err: fmt.Errorf("smartretry: %s %s: reading the response: %w", hreq.Method, hreq.URL.Path, err)}
	}
	if resp.StatusCode == http.StatusOK {
		if !notJSON(resp.Header, body) {
			c.reached.Store(true)
		}
		return resp.StatusCode, resp.Header, body, nil
	}
	pe := classify(resp, body, time.Now())
	if pe.Class == paybatch.ClassConfig {
		what := fmt.Sprintf("HTTP %d without a SmartRetry problem body", resp.StatusCode)
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 {
			what = fmt.Sprintf("a redirect (HTTP %d) to %q, which paybatch never follows", resp.StatusCode, loc)
		}
		return 0, nil, nil, c.notTheAPI(hreq.Method, hreq.URL.Path, resp.StatusCode, what)
	}
	c.reached.Store(true)
	return 0, nil, nil, pe
}

// notTheAPI is the ClassConfig error for an answer that did not come from
// the SmartRetry API.
func (c *Client) notTheAPI(method, path string, status int, what string) *paybatch.ProviderError {
	return &paybatch.ProviderError{Class: paybatch.ClassConfig, HTTPStatus: status,
		Err: fmt.Errorf("smartretry: %s %s answered %s: %s is not the SmartRetry API (the base URL is the host alone, e.g. %s; paths start with /v1/)",
			method, path, what, c.base, DefaultBaseURL)}
}

// notJSON reports whether a 200 body is plainly not the API's JSON: an HTML
// page or another non-JSON media type (a web server at the wrong URL).
func notJSON(h http.Header, body []byte) bool {
	ct := strings.ToLower(h.Get("Content-Type"))
	if strings.Contains(ct, "html") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '<'
}

// stripURL keeps transport errors short; the URL never holds the key, but
// the path is already in the message.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Client) reportRate(h http.Header, query bool) {
	if c.onRate == nil {
		return
	}
	ri := paybatch.RateInfo{Query: query}
	if v, err := strconv.Atoi(h.Get("X-RateLimit-Limit")); err == nil {
		ri.Limit, ri.Known = v, true
	}
	if v, err := strconv.Atoi(h.Get("X-RateLimit-Remaining")); err == nil {
		ri.Remaining, ri.Known = v, true
	}
	if v, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		ri.Reset = time.Unix(v, 0)
	}
	if ri.Known {
		c.onRate(ri)
	}
}

// classify maps a non-200 response to an error class.
func classify(resp *http.Response, body []byte, now time.Time) *paybatch.ProviderError {
	pe := &paybatch.ProviderError{HTTPStatus: resp.StatusCode}
	var p Problem
	isProblem := json.Unmarshal(body, &p) == nil && (p.ReasonCode != "" || p.Type != "" && p.Title != "")
	if isProblem {
		pe.Problem = paybatch.Problem{Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail,
			ReasonCode: p.ReasonCode, Field: p.Field()}
	}
	if pe.Problem.Detail == "" && pe.Problem.ReasonCode == "" {
		pe.Problem.Detail = paybatch.Excerpt(body, 200)
	}
	code := resp.StatusCode
	switch {
	case code/100 == 3:
		pe.Class = paybatch.ClassConfig // never followed: x-api-key would go wherever it points
	case code == http.StatusTooManyRequests:
		pe.Class = paybatch.ClassRateLimited
		pe.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
		if pe.RetryAfter <= 0 {
			pe.RetryAfter = time.Second
		}
	case code >= 500:
		pe.Class = paybatch.ClassTransient
		pe.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		pe.Class = paybatch.ClassAuth
	case code == http.StatusConflict && pe.Problem.ReasonCode == ReasonIdempotencyConflict:
		pe.Class = paybatch.ClassConflict
	case !isProblem:
		// SmartRetry answers every 4xx with a problem body; a bare 404 or
		// 405 comes from something else at this URL.
		pe.Class = paybatch.ClassConfig
	default:
		pe.Class = paybatch.ClassRejected
	}
	return pe
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// probeID is a well-formed transaction_id no SmartRetry transaction has.
const probeID = "PBPROBE0"

// Probe checks the endpoint and the API key with harmless reads — GET
// /health/ and a status query for a transaction that does not exist — and
// moves no money. Given terminals, it also checks the key may use each. It
// returns nil, or a *paybatch.ProviderError: ClassConfig when the endpoint
// is not the SmartRetry API, ClassAuth when the key (or a terminal) is
// refused.
func (c *Client) Probe(ctx context.Context, terminals ...string) error {
	hreq, err := c.newRequest(ctx, http.MethodGet, "/health/", nil)
	if err != nil {
		return err
	}
	hreq.Header.Del("x-api-key") // the health check needs no key: keep it off the wire
	if _, hdr, body, perr := c.do(hreq); perr != nil {
		return perr
	} else if notJSON(hdr, body) {
		return c.notTheAPI(http.MethodGet, "/health/", http.StatusOK, "an HTML or other non-JSON page")
	}
	check := terminals
	if len(check) == 0 {
		check = []string{"ABC123"} // any terminal: a 403 still proves the key is known
	}
	for _, term := range check {
		_, err := c.Status(ctx, paybatch.ProviderRef{Kind: paybatch.KindRefund, Terminal: term, ID: probeID})
		var pe *paybatch.ProviderError
		switch {
		case err == nil:
		case !errors.As(err, &pe):
			return err
		case pe.HTTPStatus == http.StatusNotFound && pe.Class == paybatch.ClassRejected:
			// TRANSACTION_NOT_FOUND: endpoint, key and terminal are right.
		case pe.HTTPStatus == http.StatusForbidden && len(terminals) == 0:
			// The key is valid; no terminal was asked about.
		case pe.HTTPStatus == http.StatusForbidden:
			return &paybatch.ProviderError{Class: paybatch.ClassAuth, HTTPStatus: pe.HTTPStatus, Problem: pe.Problem,
				Err: fmt.Errorf("smartretry: the API key may not use terminal %s", term)}
		default:
			return pe
		}
	}
	return nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
