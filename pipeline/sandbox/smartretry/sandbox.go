package smartretry

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	api "github.com/paybatch/paybatch/pipeline/smartretry"
)

// Defaults of SandboxConfig.
const (
	DefaultSettleAfter    = 2 * time.Second
	DefaultInFlightWait   = 10 * time.Second
	DefaultIdempotencyTTL = 24 * time.Hour
	maxBodyBytes          = 1 << 20
)

// SandboxConfig configures a Sandbox. Zero fields take the defaults.
type SandboxConfig struct {
	// Keys maps API keys to the terminals each may use; nil → DefaultKeys().
	Keys map[string][]string
	// Rate limits per API key, in fixed windows; a zero Limit takes the
	// documented one (api.Limits: Submit, Status, Overall).
	PaymentsLimit, StatusLimit, OverallLimit paybatch.Limit
	// SettleAfter is how long an accepted operation stays PROCESSING before
	// its final status. 0 → DefaultSettleAfter (2s); negative → final at once.
	SettleAfter time.Duration
	// InFlightWait is how long a duplicate keyed request waits for the
	// original before 503 RESOURCE_LOCKED; 0 → 10s.
	InFlightWait time.Duration
	// IdempotencyTTL is how long responses stay stored per key; 0 → 24h.
	IdempotencyTTL time.Duration
	// Now is the clock; nil → time.Now.
	Now func() time.Time
	// Ops receives every executed state-changing operation; nil → a private log.
	Ops *sim.OpLog
	// Stats receives the counters; nil → private counters.
	Stats *sim.Stats
	// Fixtures are the transactions the sandbox starts with (and returns to
	// on Reset); nil → DefaultFixtures(). Invalid entries are skipped: check
	// them first with ValidateFixtures.
	Fixtures []TransactionFixture
	// Seed makes issued transaction and order ids reproducible.
	Seed int64
	// BeforeExecute, when set, is called for every payment POST after its
	// idempotency key is claimed and before the operation executes — a test
	// hook to hold a request "in flight".
	BeforeExecute func(r *http.Request)
}

// Sandbox is a stateful in-memory SmartRetry API: an http.Handler serving
// /v1/… and /health/…. Safe for concurrent use.
type Sandbox struct {
	cfg      SandboxConfig
	keys     map[string]map[string]bool
	now      func() time.Time
	ops      *sim.OpLog
	stats    *sim.Stats
	payments *sim.Limiter
	status   *sim.Limiter
	overall  *sim.Limiter

	mu     sync.Mutex // guards the state below
	txns   map[string]*txn
	orders map[string]*order
	rng    *rand.Rand

	idemMu     sync.Mutex
	idem       map[string]*idemEntry
	idemClaims int // claims since the last sweep of expired entries
}

type order struct {
	id, terminal    string
	merchantOrderID string
	description     string
	instrument      *api.StatusInstrument
}

type txn struct {
	id, terminal, typ string
	order             *order
	amount            paybatch.Money
	merchantTxID      string
	parent            *txn
	children          []*txn
	created, settleAt time.Time
	final             api.StatusObject // the status once settled
	authCode, arn     string
}

// NewSandbox returns a sandbox with cfg's keys, limits, clock and fixtures.
func NewSandbox(cfg SandboxConfig) *Sandbox {
	if cfg.Keys == nil {
		cfg.Keys = DefaultKeys()
	}
	doc := api.Limits()
	if cfg.PaymentsLimit.IsZero() {
		cfg.PaymentsLimit = doc.Submit
	}
	if cfg.StatusLimit.IsZero() {
		cfg.StatusLimit = doc.Status
	}
	if cfg.OverallLimit.IsZero() {
		cfg.OverallLimit = doc.Overall
	}
	switch {
	case cfg.SettleAfter == 0:
		cfg.SettleAfter = DefaultSettleAfter
	case cfg.SettleAfter < 0:
		cfg.SettleAfter = 0
	}
	if cfg.InFlightWait <= 0 {
		cfg.InFlightWait = DefaultInFlightWait
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ops == nil {
		cfg.Ops = &sim.OpLog{}
	}
	if cfg.Stats == nil {
		cfg.Stats = &sim.Stats{}
	}
	if cfg.Fixtures == nil {
		cfg.Fixtures = DefaultFixtures()
	}
	s := &Sandbox{
		cfg: cfg, now: cfg.Now, ops: cfg.Ops, stats: cfg.Stats,
		keys:     make(map[string]map[string]bool, len(cfg.Keys)),
		payments: sim.NewLimiter(cfg.PaymentsLimit, cfg.Now),
		status:   sim.NewLimiter(cfg.StatusLimit, cfg.Now),
		overall:  sim.NewLimiter(cfg.OverallLimit, cfg.Now),
	}
	for k, terms := range cfg.Keys {
		m := make(map[string]bool, len(terms))
		for _, t := range terms {
			m[t] = true
		}
		s.keys[k] = m
	}
	s.Reset()
	return s
}

// Reset returns the sandbox to its fixtures: transactions, idempotency
// store and rate-limit windows are cleared. The OpLog and Stats it was
// given are not touched (the combined server resets those).
func (s *Sandbox) Reset() {
	s.mu.Lock()
	s.txns = make(map[string]*txn)
	s.orders = make(map[string]*order)
	s.rng = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0x5eed5eed))
	start := s.now().UTC()
	for _, f := range s.cfg.Fixtures {
		if f.Validate() != nil {
			continue
		}
		m, _ := f.money()
		o := s.orders[f.OrderID]
		if o == nil {
			o = &order{id: f.OrderID, terminal: f.Terminal, merchantOrderID: f.MerchantTransactionID}
			s.orders[f.OrderID] = o
		}
		st := f.Status
		if st == "" {
			st = api.StatusApproved
		}
		t := &txn{id: f.TransactionID, terminal: f.Terminal, typ: f.Type, order: o, amount: m,
			merchantTxID: f.MerchantTransactionID, created: start, settleAt: start, final: finalStatus(f.Type, st)}
		if st == api.StatusApproved {
			t.authCode, t.arn = s.authCodes()
		}
		s.txns[f.TransactionID] = t
	}
	s.mu.Unlock()
	s.idemMu.Lock()
	s.idem = make(map[string]*idemEntry)
	s.idemMu.Unlock()
	s.payments.Reset()
	s.status.Reset()
	s.overall.Reset()
}

// Fixtures returns the fixtures the sandbox starts from.
func (s *Sandbox) Fixtures() []TransactionFixture {
	return append([]TransactionFixture(nil), s.cfg.Fixtures...)
}

// Ops returns the operation log the sandbox records into.
func (s *Sandbox) Ops() *sim.OpLog { return s.ops }

// Stats returns the counters the sandbox increments.
func (s *Sandbox) Stats() *sim.Stats { return s.stats }

// ---------------------------------------------------------------- routing

// ServeHTTP serves /v1/payments/… and /health/….
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.stats.Inc(sim.CountRequests)
	path := r.URL.Path
	if path == "/health" || strings.HasPrefix(path, "/health/") {
		s.serveHealth(w, r)
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	// ["v1","payments",op,terminal] or ["v1","payments","status",terminal,id]
	if len(parts) < 4 || parts[0] != "v1" || parts[1] != "payments" {
		writeProblem(w, http.StatusNotFound, api.ReasonNotFound, "Not Found", fmt.Sprintf("no endpoint %s", path), nil)
		return
	}
	if parts[2] == "status" {
		if len(parts) != 5 {
			writeProblem(w, http.StatusNotFound, api.ReasonNotFound, "Not Found", "want /v1/payments/status/{terminal_friendly_id}/{transaction_id}", nil)
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeProblem(w, http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, "Method Not Allowed", "status is read with GET", nil)
			return
		}
		s.serveStatus(w, r, parts[3], parts[4])
		return
	}
	op := parts[2]
	switch op {
	case api.TypeSale, api.TypePreauth, api.TypeCapture, api.TypeVoid, api.TypeRefund:
	default:
		writeProblem(w, http.StatusNotFound, api.ReasonNotFound, "Not Found", fmt.Sprintf("no endpoint %s", path), nil)
		return
	}
	if len(parts) != 4 {
		writeProblem(w, http.StatusNotFound, api.ReasonNotFound, "Not Found", fmt.Sprintf("want /v1/payments/%s/{terminal_friendly_id}", op), nil)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeProblem(w, http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, "Method Not Allowed", op+" is a POST", nil)
		return
	}
	s.servePayment(w, r, op, parts[3])
}

func (s *Sandbox) serveHealth(w http.ResponseWriter, r *http.Request) {
	ts := s.now().UTC().Format(time.RFC3339)
	var body any
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/health":
		body = map[string]any{"status": "healthy", "timestamp": ts}
	case "/health/ready":
		body = map[string]any{"status": "ready", "timestamp": ts,
			"checks": map[string]string{"database": "ok", "cache": "ok", "payment_providers": "ok"}}
	case "/health/live":
		body = map[string]any{"status": "alive", "timestamp": ts}
	default:
		writeProblem(w, http.StatusNotFound, api.ReasonNotFound, "Not Found", "no endpoint "+r.URL.Path, nil)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// authenticate checks x-api-key and the rate limits of class (one of the
// limiters or nil) and the overall limit, writing 401/429 itself. On
// success the X-RateLimit-* headers are set on w.
func (s *Sandbox) authenticate(w http.ResponseWriter, r *http.Request, class *sim.Limiter) (apiKey string, terminals map[string]bool, ok bool) {
	apiKey = r.Header.Get("x-api-key")
	terminals, known := s.keys[apiKey]
	if apiKey == "" || !known {
		detail := "x-api-key header is missing"
		if apiKey != "" {
			detail = "the API key is unknown or revoked"
		}
		writeProblem(w, http.StatusUnauthorized, api.ReasonInvalidAPIKey, "Unauthorized", detail, nil)
		return "", nil, false
	}
	okAll, remAll, resetAll := s.overall.Take(apiKey)
	lim, rem, reset := s.overall.Limit(), remAll, resetAll
	okClass := true
	if okAll && class != nil {
		var remC int
		var resetC time.Time
		okClass, remC, resetC = class.Take(apiKey)
		lim, rem, reset = class.Limit(), remC, resetC
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(lim))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rem))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilUnix(reset), 10))
	if !okAll || !okClass {
		s.stats.Inc(sim.CountRateLimited)
		wait := max(int64(math.Ceil(reset.Sub(s.now()).Seconds())), 1)
		h.Set("Retry-After", strconv.FormatInt(wait, 10))
		writeProblemType(w, "https://api.smartretry.com/errors/rate-limit", http.StatusTooManyRequests,
			api.ReasonRateLimitExceeded, "Too Many Requests",
			fmt.Sprintf("Rate limit exceeded. Retry after %d second%s.", wait, plural(wait)), nil)
		return "", nil, false
	}
	return apiKey, terminals, true
}

func ceilUnix(t time.Time) int64 {
	u := t.Unix()
	if t.Nanosecond() > 0 {
		u++
	}
	return u
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ---------------------------------------------------------------- status

func (s *Sandbox) serveStatus(w http.ResponseWriter, r *http.Request, terminal, id string) {
	_, terminals, ok := s.authenticate(w, r, s.status)
	if !ok {
		return
	}
	if !terminals[terminal] {
		writeProblem(w, http.StatusForbidden, api.ReasonTerminalNotAllowed, "Forbidden",
			fmt.Sprintf("this API key may not use terminal %q", terminal), map[string]any{"field": "terminal_friendly_id"})
		return
	}
	if !api.ValidID(id) {
		writeProblem(w, http.StatusBadRequest, api.ReasonValidation, "Bad Request",
			fmt.Sprintf("transaction_id %q must be exactly 8 letters or digits", id), map[string]any{"field": "transaction_id"})
		return
	}
	s.mu.Lock()
	t := s.txns[id]
	var resp api.StatusResponse
	if t != nil && t.terminal == terminal {
		resp = s.statusOf(t, s.now())
	}
	s.mu.Unlock()
	if t == nil || t.terminal != terminal {
		writeProblem(w, http.StatusNotFound, api.ReasonTransactionNotFound, "Not Found",
			fmt.Sprintf("no transaction %s on terminal %s", id, terminal), map[string]any{"field": "transaction_id"})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// current returns t's status at now. Callers hold s.mu.
func (s *Sandbox) current(t *txn, now time.Time) api.StatusObject {
	if now.Before(t.settleAt) {
		return statusObject(api.StatusProcessing, "PROCESSOR.PENDING", "PROCESSOR")
	}
	st := t.final
	if t.typ == api.TypePreauth && st.Status == api.StatusApproved {
		for _, c := range t.children {
			if c.typ == api.TypeVoid && s.current(c, now).Status == api.StatusApproved {
				return statusObject(api.StatusCancelled, "AUTH.VOIDED", "AUTH")
			}
		}
	}
	return st
}

func (s *Sandbox) statusOf(t *txn, now time.Time) api.StatusResponse {
	st := s.current(t, now)
	updated := t.created
	if !now.Before(t.settleAt) {
		updated = t.settleAt
	}
	resp := api.StatusResponse{
		TransactionID: t.id, Type: t.typ,
		Amount: json.Number(t.amount.String()), Currency: t.amount.Currency.Code(),
		AttemptNumber: 1,
		CreatedAt:     t.created.UTC().Format(time.RFC3339), UpdatedAt: updated.UTC().Format(time.RFC3339),
		Status: st,
		Order: api.StatusOrder{OrderID: t.order.id, MerchantOrderID: t.order.merchantOrderID,
			Description: t.order.description, PaymentInstrument: t.order.instrument},
	}
	if st.Status == api.StatusApproved || st.Status == api.StatusCancelled {
		resp.AuthorizationCode, resp.ARN = t.authCode, t.arn
	}
	return resp
}

// ---------------------------------------------------------------- payments

// result is a response produced by executing a payment request.
type result struct {
	status int
	body   []byte
	ctype  string
}

func (s *Sandbox) servePayment(w http.ResponseWriter, r *http.Request, op, terminal string) {
	apiKey, terminals, ok := s.authenticate(w, r, s.payments)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			writeProblem(w, http.StatusUnsupportedMediaType, api.ReasonUnsupportedMedia, "Unsupported Media Type",
				fmt.Sprintf("Content-Type %q: send application/json", ct), nil)
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return // the client went away; nothing ran
	}
	if len(body) > maxBodyBytes {
		writeProblem(w, http.StatusRequestEntityTooLarge, api.ReasonValidation, "Content Too Large", "request body over 1 MiB", nil)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if _, present := r.Header["Idempotency-Key"]; present && !api.ValidIdempotencyKey(key) {
		writeProblem(w, http.StatusBadRequest, api.ReasonInvalidIdemKey, "Bad Request",
			"Idempotency-Key must be 1-255 letters, digits, '_' or '-'", map[string]any{"field": "Idempotency-Key"})
		return
	}
	exec := func() result {
		if s.cfg.BeforeExecute != nil {
			s.cfg.BeforeExecute(r)
		}
		return s.execute(op, terminal, terminals, key, body)
	}
	if key == "" {
		res := exec()
		writeResult(w, res)
		return
	}
	s.idempotent(w, r, apiKey, key, fingerprint(r.URL.Path, body), exec)
}

// execute validates and runs one payment operation. It never returns 5xx.
func (s *Sandbox) execute(op, terminal string, terminals map[string]bool, key string, body []byte) result {
	if !terminals[terminal] {
		return problemResult(http.StatusForbidden, api.ReasonTerminalNotAllowed, "Forbidden",
			fmt.Sprintf("this API key may not use terminal %q", terminal), map[string]any{"field": "terminal_friendly_id"})
	}
	switch op {
	case api.TypeSale, api.TypePreauth:
		return s.execSale(op, terminal, key, body)
	case api.TypeCapture:
		return s.execCapture(terminal, key, body)
	case api.TypeVoid:
		return s.execVoid(terminal, key, body)
	default:
		return s.execRefund(terminal, key, body)
	}
}

// decode reads a JSON object strictly: numbers kept as text, trailing data
// refused, unknown fields refused when strict.
func decode(body []byte, v any, strict bool) *result {
	if len(bytes.TrimSpace(body)) == 0 {
		r := problemResult(http.StatusBadRequest, api.ReasonValidation, "Bad Request", "request body is empty; send a JSON object", nil)
		return &r
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err == nil {
		return nil
	}
	ctx := map[string]any{}
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		ctx["field"] = te.Field
		err = fmt.Errorf("field %s must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		ctx["field"] = f
		err = fmt.Errorf("unknown field %q (check its spelling: an unknown field is never ignored here)", f)
	}
	if len(ctx) == 0 {
		ctx = nil
	}
	r := problemResult(http.StatusBadRequest, api.ReasonValidation, "Bad Request", "malformed JSON: "+err.Error(), ctx)
	return &r
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "float64":
		return "number"
	case "struct", "map", "ptr":
		return "object"
	}
	return k
}

// amountOf validates a JSON amount (raw number text) in cur.
func amountOf(raw json.Number, cur paybatch.Currency, field string) (paybatch.Money, *result) {
	m, err := api.ParseAmount(string(raw), cur)
	if err != nil {
		r := problemResult(http.StatusBadRequest, api.ReasonInvalidAmount, "Bad Request",
			fmt.Sprintf("%s: %v; send a JSON number in major units with at most %d decimals for %s, e.g. %s",
				field, err, cur.Exponent(), cur.Code(), paybatch.Money{Currency: cur, Minor: 2500 * pow10(cur.Exponent()) / 100}.String()),
			map[string]any{"field": field})
		return paybatch.Money{}, &r
	}
	return m, nil
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// rawNumber checks that field holds a JSON number, not a string: decode
// into json.Number also accepts "25.00" strings, which SmartRetry refuses.
func rawNumber(body []byte, field string) *result {
	var probe struct {
		Amount json.RawMessage `json:"amount"`
	}
	if field != "amount" || json.Unmarshal(body, &probe) != nil {
		return nil // decode already reported a malformed body
	}
	if raw := probe.Amount; len(raw) > 0 && raw[0] == '"' {
		r := problemResult(http.StatusBadRequest, api.ReasonInvalidAmount, "Bad Request",
			fmt.Sprintf("%s must be a JSON number in major units (e.g. 25.00), not a string", field), map[string]any{"field": field})
		return &r
	}
	return nil
}

func invalid(field, detail string) result {
	return problemResult(http.StatusBadRequest, api.ReasonValidation, "Bad Request", detail, map[string]any{"field": field})
}

// ---------------------------------------------------------------- outcomes

// outcome decides an operation's fate from the documented sandbox triggers.
type outcome struct {
	accepted bool
	final    api.StatusObject
}

func (s *Sandbox) decideOutcome(op string, m paybatch.Money, card string) outcome {
	if (op == api.TypeSale || op == api.TypePreauth) && card == DeclineCard {
		return outcome{false, statusObject(api.StatusDeclined, "AUTH.CARD_DECLINED", "AUTH")}
	}
	if op == api.TypeVoid {
		return outcome{true, statusObject(api.StatusApproved, "AUTH.APPROVED", "AUTH")}
	}
	switch m.Minor % 100 {
	case 51:
		if op == api.TypeSale || op == api.TypePreauth {
			return outcome{false, statusObject(api.StatusDeclined, "AUTH.INSUFFICIENT_FUNDS", "PAYER_ACCOUNT")}
		}
		return outcome{false, statusObject(api.StatusDeclined, "PROCESSOR.DECLINED", "PROCESSOR")}
	case 52:
		return outcome{true, statusObject(api.StatusDeclined, "RISK.DECLINED", "RISK")}
	case 53:
		return outcome{true, statusObject(api.StatusError, "SYSTEM.ERROR", "SYSTEM")}
	}
	return outcome{true, statusObject(api.StatusApproved, "AUTH.APPROVED", "AUTH")}
}

// DeclineCard is the test card number whose sales and preauths are declined.
const DeclineCard = "4000000000000002"

var statusText = map[string][2]string{
	"AUTH.APPROVED":           {"Approved", "The transaction was approved."},
	"AUTH.VOIDED":             {"Voided", "The pre-authorisation was voided; the hold is released."},
	"AUTH.CARD_DECLINED":      {"Card declined", "The issuer declined the card (sandbox test card 4000000000000002)."},
	"AUTH.INSUFFICIENT_FUNDS": {"Insufficient funds", "The payer's account has insufficient funds (sandbox trigger: amount ending in 51)."},
	"PROCESSOR.DECLINED":      {"Declined by processor", "The acquirer declined the operation (sandbox trigger: amount ending in 51)."},
	"PROCESSOR.PENDING":       {"Processing", "Submitted; awaiting the acquirer."},
	"RISK.DECLINED":           {"Declined by risk", "A risk rule declined the operation (sandbox trigger: amount ending in 52)."},
	"SYSTEM.ERROR":            {"System error", "A technical failure stopped the operation (sandbox trigger: amount ending in 53)."},
	"FIXTURE.DECLINED":        {"Declined", "Declined (sandbox fixture)."},
	"FIXTURE.ERROR":           {"Error", "Failed (sandbox fixture)."},
	"FIXTURE.CANCELLED":       {"Cancelled", "Cancelled (sandbox fixture)."},
}

func statusObject(status, reason, domain string) api.StatusObject {
	t := statusText[reason]
	return api.StatusObject{Status: status, ReasonCode: reason, Name: t[0], Description: t[1], Domain: domain}
}

func finalStatus(typ, st string) api.StatusObject {
	switch st {
	case api.StatusDeclined:
		return statusObject(st, "FIXTURE.DECLINED", "PROCESSOR")
	case api.StatusError:
		return statusObject(st, "FIXTURE.ERROR", "SYSTEM")
	case api.StatusCancelled:
		return statusObject(st, "FIXTURE.CANCELLED", "AUTH")
	}
	return statusObject(api.StatusApproved, "AUTH.APPROVED", "AUTH")
}

// newID returns an unused 8-character id: prefix + 6 random characters.
// Callers hold s.mu.
func (s *Sandbox) newID(prefix string) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	for {
		b := []byte(prefix + "000000")
		for i := 2; i < 8; i++ {
			b[i] = alphabet[s.rng.IntN(len(alphabet))]
		}
		id := string(b)
		if _, taken := s.txns[id]; taken {
			continue
		}
		if _, taken := s.orders[id]; taken {
			continue
		}
		return id
	}
}

func (s *Sandbox) authCodes() (auth, arn string) {
	auth = fmt.Sprintf("AUTH%03d", s.rng.IntN(1000))
	arn = fmt.Sprintf("7449180%08d%08d", s.rng.IntN(1e8), s.rng.IntN(1e8))
	return auth, arn
}

// commit stores a new transaction, records the operation and builds the
// acknowledgement. Callers hold s.mu.
func (s *Sandbox) commit(t *txn, oc outcome, key string, now time.Time) result {
	t.created = now
	t.final = oc.final
	if oc.accepted {
		t.settleAt = now.Add(s.cfg.SettleAfter)
	} else {
		t.settleAt = now
	}
	if oc.final.Status == api.StatusApproved {
		t.authCode, t.arn = s.authCodes()
	}
	s.txns[t.id] = t
	if t.parent != nil {
		t.parent.children = append(t.parent.children, t)
	}
	s.stats.Inc(sim.CountExecuted)
	s.ops.Record(sim.Operation{
		Provider: string(paybatch.SmartRetry), Operation: t.typ, IdempotencyKey: key,
		Reference: t.merchantTxID, Amount: t.amount.String(), Currency: t.amount.Currency.Code(),
		IDs:  map[string]string{"transaction_id": t.id, "order_id": t.order.id},
		Time: now,
	})
	resp := api.PaymentResponse{TransactionID: t.id, OrderID: t.order.id, MerchantTransactionID: t.merchantTxID, Accepted: oc.accepted}
	b, _ := json.Marshal(resp)
	return result{status: http.StatusOK, body: b, ctype: "application/json"}
}

// ---------------------------------------------------------------- sale / preauth

func (s *Sandbox) execSale(op, terminal, key string, body []byte) result {
	var req api.SaleRequest
	if bad := decode(body, &req, false); bad != nil {
		return *bad
	}
	if bad := rawNumber(body, "amount"); bad != nil {
		return *bad
	}
	switch {
	case req.MerchantTransactionID == "":
		return invalid("merchant_transaction_id", "merchant_transaction_id is required")
	case len(req.MerchantTransactionID) > 100:
		return invalid("merchant_transaction_id", "merchant_transaction_id is longer than 100 characters")
	case req.Currency == "":
		return invalid("currency", "currency is required (ISO 4217, e.g. USD)")
	case req.Amount == "":
		return invalid("amount", "amount is required (a JSON number in major units)")
	case len(req.Description) > 500:
		return invalid("description", "description is longer than 500 characters")
	}
	cur, err := paybatch.ParseCurrency(req.Currency)
	if err != nil || cur.Code() != req.Currency {
		return invalid("currency", fmt.Sprintf("currency %q is not an upper-case ISO 4217 code", req.Currency))
	}
	m, bad := amountOf(req.Amount, cur, "amount")
	if bad != nil {
		return *bad
	}
	if one := pow10(cur.Exponent()); m.Minor < one || m.Minor > 999999999*one {
		return problemResult(http.StatusBadRequest, api.ReasonInvalidAmount, "Bad Request",
			fmt.Sprintf("amount %s must be between 1 and 999999999 %s", m, cur.Code()), map[string]any{"field": "amount"})
	}
	pi, field := req.PaymentInstrument, "payment_instrument"
	if req.Order != nil && req.Order.PaymentInstrument != nil {
		pi, field = req.Order.PaymentInstrument, "order.payment_instrument"
	}
	var inst *api.StatusInstrument
	card := ""
	switch {
	case pi != nil && pi.CardNumber != "":
		if len(pi.CardNumber) < 13 || len(pi.CardNumber) > 19 || !allDigits(pi.CardNumber) {
			return invalid(field+".card_number", "card_number must be 13 to 19 digits")
		}
		if pi.ExpiryMonth < 1 || pi.ExpiryMonth > 12 {
			return invalid(field+".expiry_month", "expiry_month must be 1 to 12")
		}
		if pi.ExpiryYear < 2024 || pi.ExpiryYear > 2099 {
			return invalid(field+".expiry_year", "expiry_year must be 2024 to 2099")
		}
		if len(pi.CardCardholderName) > 100 {
			return invalid(field+".card_cardholder_name", "card_cardholder_name is longer than 100 characters")
		}
		card = pi.CardNumber
		exp := time.Date(pi.ExpiryYear, time.Month(pi.ExpiryMonth)+1, 0, 0, 0, 0, 0, time.UTC)
		inst = &api.StatusInstrument{PaymentMethod: "cards", CardCardholderName: pi.CardCardholderName,
			CardBin: card[:6], CardCardLastFourDigit: card[len(card)-4:], ExpirationDate: exp.Format(time.RFC3339)}
	case pi != nil && pi.Token != "" || req.Token != "":
		tok := req.Token
		if tok == "" {
			tok = pi.Token
		}
		if len(tok) != 88 {
			return invalid("token", "token must be the 88-character stored payment token")
		}
		inst = &api.StatusInstrument{PaymentMethod: "cards"}
	default:
		return invalid("order.payment_instrument", "a payment instrument is required: order.payment_instrument with card_number, or a token")
	}
	if req.CVV != "" && (len(req.CVV) < 3 || len(req.CVV) > 4 || !allDigits(req.CVV)) {
		return invalid("cvv", "cvv must be 3 or 4 digits")
	}
	merchantOrderID, orderDesc := "", ""
	if req.Order != nil {
		if len(req.Order.MerchantOrderID) > 100 {
			return invalid("order.merchant_order_id", "merchant_order_id is longer than 100 characters")
		}
		merchantOrderID, orderDesc = req.Order.MerchantOrderID, req.Order.Description
	}
	if merchantOrderID == "" {
		merchantOrderID = req.MerchantTransactionID
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var o *order
	if req.OrderID != "" {
		if !api.ValidID(req.OrderID) {
			return invalid("order_id", "order_id must be exactly 8 letters or digits")
		}
		o = s.orders[req.OrderID]
		if o == nil || o.terminal != terminal {
			return problemResult(http.StatusNotFound, api.ReasonNotFound, "Not Found",
				fmt.Sprintf("no order %s on terminal %s", req.OrderID, terminal), map[string]any{"field": "order_id"})
		}
	} else {
		o = &order{id: s.newID("OR"), terminal: terminal, merchantOrderID: merchantOrderID, description: orderDesc, instrument: inst}
		s.orders[o.id] = o
	}
	t := &txn{id: s.newID("TX"), terminal: terminal, typ: op, order: o, amount: m, merchantTxID: req.MerchantTransactionID}
	return s.commit(t, s.decideOutcome(op, m, card), key, s.now().UTC())
}

// ---------------------------------------------------------------- capture / void / refund

// target looks up the referenced transaction and checks its order. Callers
// hold s.mu.
func (s *Sandbox) target(terminal, txID, orderID string) (*txn, *result) {
	if txID == "" {
		r := invalid("transaction_reference_id", "transaction_reference_id is required")
		return nil, &r
	}
	if !api.ValidID(txID) {
		r := invalid("transaction_reference_id", fmt.Sprintf("transaction_reference_id %q must be exactly 8 letters or digits", txID))
		return nil, &r
	}
	if orderID == "" {
		r := invalid("order_reference_id", "order_reference_id is required")
		return nil, &r
	}
	if !api.ValidID(orderID) {
		r := invalid("order_reference_id", fmt.Sprintf("order_reference_id %q must be exactly 8 letters or digits", orderID))
		return nil, &r
	}
	t := s.txns[txID]
	if t == nil || t.terminal != terminal {
		r := problemResult(http.StatusNotFound, api.ReasonTransactionNotFound, "Not Found",
			fmt.Sprintf("no transaction %s on terminal %s", txID, terminal), map[string]any{"field": "transaction_reference_id"})
		return nil, &r
	}
	if t.order.id != orderID {
		r := problemResult(http.StatusConflict, api.ReasonOrderMismatch, "Conflict",
			fmt.Sprintf("transaction %s belongs to order %s, not %s", txID, t.order.id, orderID),
			map[string]any{"field": "order_reference_id", "transaction_id": txID})
		return nil, &r
	}
	return t, nil
}

func stateConflict(t *txn, detail string) result {
	return problemResult(http.StatusConflict, api.ReasonInvalidState, "Conflict", detail,
		map[string]any{"field": "transaction_reference_id", "transaction_id": t.id})
}

// live reports whether c still counts against its parent: it is approved,
// or still processing.
func (s *Sandbox) live(c *txn, now time.Time) bool {
	st := s.current(c, now).Status
	return st == api.StatusApproved || st == api.StatusProcessing
}

func (s *Sandbox) execCapture(terminal, key string, body []byte) result {
	var req api.CaptureRequest
	if bad := decode(body, &req, true); bad != nil {
		return *bad
	}
	if bad := rawNumber(body, "amount"); bad != nil {
		return *bad
	}
	if len(req.MerchantTransactionID) > 100 {
		return invalid("merchant_transaction_id", "merchant_transaction_id is longer than 100 characters")
	}
	if len(req.Description) > 500 {
		return invalid("description", "description is longer than 500 characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	pre, bad := s.openPreauth(terminal, req.TransactionReferenceID, req.OrderReferenceID, "captured", "", now)
	if bad != nil {
		return *bad
	}
	if req.MerchantTransactionID != "" && req.MerchantTransactionID == pre.merchantTxID {
		return invalid("merchant_transaction_id", "merchant_transaction_id must differ from the preauth's")
	}
	m := pre.amount
	if req.Amount != "" {
		var bad *result
		if m, bad = amountOf(req.Amount, pre.amount.Currency, "amount"); bad != nil {
			return *bad
		}
		if m.Minor > pre.amount.Minor {
			return problemResult(http.StatusConflict, api.ReasonCaptureExceeds, "Conflict",
				fmt.Sprintf("capture of %s %s exceeds the authorised %s", m, m.Currency, pre.amount),
				map[string]any{"field": "amount", "transaction_id": pre.id, "authorized_amount": json.Number(pre.amount.String())})
		}
	}
	t := &txn{id: s.newID("TX"), terminal: terminal, typ: api.TypeCapture, order: pre.order, amount: m,
		merchantTxID: req.MerchantTransactionID, parent: pre}
	return s.commit(t, s.decideOutcome(api.TypeCapture, m, ""), key, now)
}

// openPreauth finds the preauth a capture or void targets and checks it can
// still be settled: an APPROVED preauth with no live capture or void. verb
// is "captured" or "voided"; hint is appended when the target is not a
// preauth. The caller holds s.mu.
func (s *Sandbox) openPreauth(terminal, txRef, orderRef, verb, hint string, now time.Time) (*txn, *result) {
	pre, bad := s.target(terminal, txRef, orderRef)
	if bad != nil {
		return nil, bad
	}
	if pre.typ != api.TypePreauth {
		r := stateConflict(pre, fmt.Sprintf("transaction %s is a %s; only a preauth can be %s%s", pre.id, pre.typ, verb, hint))
		return nil, &r
	}
	if st := s.current(pre, now).Status; st != api.StatusApproved {
		r := stateConflict(pre, fmt.Sprintf("preauth %s is %s; only an APPROVED preauth can be %s", pre.id, st, verb))
		return nil, &r
	}
	for _, c := range pre.children {
		if s.live(c, now) {
			r := stateConflict(pre, fmt.Sprintf("preauth %s already has a %s (%s)", pre.id, c.typ, c.id))
			return nil, &r
		}
	}
	return pre, nil
}

func (s *Sandbox) execVoid(terminal, key string, body []byte) result {
	var req api.VoidRequest
	if bad := decode(body, &req, true); bad != nil {
		return *bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	pre, bad := s.openPreauth(terminal, req.TransactionReferenceID, req.OrderReferenceID, "voided",
		" (refund a completed sale or capture instead)", now)
	if bad != nil {
		return *bad
	}
	t := &txn{id: s.newID("TX"), terminal: terminal, typ: api.TypeVoid, order: pre.order, amount: pre.amount, parent: pre}
	return s.commit(t, s.decideOutcome(api.TypeVoid, pre.amount, ""), key, now)
}

func (s *Sandbox) execRefund(terminal, key string, body []byte) result {
	var req api.RefundRequest
	if bad := decode(body, &req, true); bad != nil {
		return *bad
	}
	if bad := rawNumber(body, "amount"); bad != nil {
		return *bad
	}
	if len(req.MerchantTransactionID) > 100 {
		return invalid("merchant_transaction_id", "merchant_transaction_id is longer than 100 characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	orig, bad := s.target(terminal, req.TransactionReferenceID, req.OrderReferenceID)
	if bad != nil {
		return *bad
	}
	if orig.typ != api.TypeSale && orig.typ != api.TypeCapture {
		return stateConflict(orig, fmt.Sprintf("transaction %s is a %s; only a completed sale or capture can be refunded", orig.id, orig.typ))
	}
	if st := s.current(orig, now).Status; st != api.StatusApproved {
		return stateConflict(orig, fmt.Sprintf("%s %s is %s; only an APPROVED sale or capture can be refunded", orig.typ, orig.id, st))
	}
	if req.MerchantTransactionID != "" && req.MerchantTransactionID == orig.merchantTxID {
		return invalid("merchant_transaction_id", "merchant_transaction_id must differ from the original transaction's")
	}
	cur := orig.amount.Currency
	if req.Currency != "" && req.Currency != cur.Code() {
		return problemResult(http.StatusBadRequest, api.ReasonCurrencyMismatch, "Bad Request",
			fmt.Sprintf("currency %s differs from the original transaction's %s", req.Currency, cur.Code()),
			map[string]any{"field": "currency", "transaction_id": orig.id})
	}
	var refunded int64
	for _, c := range orig.children {
		if c.typ == api.TypeRefund && s.live(c, now) {
			refunded += c.amount.Minor
		}
	}
	left := paybatch.Money{Currency: cur, Minor: orig.amount.Minor - refunded}
	m := left
	if req.Amount != "" {
		var bad *result
		if m, bad = amountOf(req.Amount, cur, "amount"); bad != nil {
			return *bad
		}
	}
	if m.Minor <= 0 || m.Minor > left.Minor {
		return problemResult(http.StatusConflict, api.ReasonRefundExceeds, "Conflict",
			fmt.Sprintf("refund of %s %s would exceed the original %s: %s already refunded or pending, %s left",
				m, cur.Code(), orig.amount, paybatch.Money{Currency: cur, Minor: refunded}, left),
			map[string]any{"field": "amount", "transaction_id": orig.id,
				"original_amount": json.Number(orig.amount.String()), "refundable_amount": json.Number(left.String())})
	}
	t := &txn{id: s.newID("TX"), terminal: terminal, typ: api.TypeRefund, order: orig.order, amount: m,
		merchantTxID: req.MerchantTransactionID, parent: orig}
	return s.commit(t, s.decideOutcome(api.TypeRefund, m, ""), key, now)
}

// ---------------------------------------------------------------- idempotency

type idemEntry struct {
	fp       [32]byte
	done     chan struct{} // closed when the first request finishes
	complete bool
	res      result
	expires  time.Time
}

// fingerprint identifies a request's content: the path (so a key reused on
// another endpoint or terminal conflicts) and the body as canonical JSON
// (object keys sorted, number text kept), so whitespace and key order do
// not matter but every value does. A body that is not JSON is compared
// byte for byte.
func fingerprint(path string, body []byte) [32]byte {
	canon := body
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	h := sha256.New()
	io.WriteString(h, path)
	h.Write([]byte{0})
	h.Write(canon)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (s *Sandbox) idempotent(w http.ResponseWriter, r *http.Request, apiKey, key string, fp [32]byte, exec func() result) {
	slot := apiKey + "\x00" + key
	var timeout <-chan time.Time
	for {
		now := s.now()
		s.idemMu.Lock()
		e := s.idem[slot]
		if e != nil && e.complete && !now.Before(e.expires) {
			delete(s.idem, slot)
			e = nil
		}
		if e == nil {
			if s.idemClaims++; s.idemClaims >= 4096 {
				s.sweepLocked(now)
			}
			e = &idemEntry{fp: fp, done: make(chan struct{})}
			s.idem[slot] = e
			s.idemMu.Unlock()
			s.runClaimed(w, slot, key, e, exec)
			return
		}
		if e.fp != fp {
			s.idemMu.Unlock()
			writeProblem(w, http.StatusConflict, api.ReasonIdempotencyConflict, "Conflict",
				"this Idempotency-Key was already used with a different request body or endpoint; use a new key for a new operation",
				map[string]any{"idempotency_key": key})
			return
		}
		if e.complete {
			res, exp := e.res, e.expires
			s.idemMu.Unlock()
			s.stats.Inc(sim.CountReplayed)
			setIdemHeaders(w, key, true, exp)
			writeResult(w, res)
			return
		}
		done := e.done
		s.idemMu.Unlock()
		if timeout == nil {
			t := time.NewTimer(s.cfg.InFlightWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-done:
			// The first finished: replay it, or claim the key if its
			// answer was a 5xx and so not stored.
		case <-timeout:
			writeProblem(w, http.StatusServiceUnavailable, api.ReasonResourceLocked, "Service Unavailable",
				fmt.Sprintf("a request with this Idempotency-Key is still in flight after %s; retry later with the same key", s.cfg.InFlightWait),
				map[string]any{"idempotency_key": key})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// sweepLocked drops expired entries so a long run's store stays bounded by
// one TTL of keys. Callers hold s.idemMu.
func (s *Sandbox) sweepLocked(now time.Time) {
	s.idemClaims = 0
	for k, e := range s.idem {
		if e.complete && !now.Before(e.expires) {
			delete(s.idem, k)
		}
	}
}

// runClaimed executes the request that owns slot and stores its answer
// unless it is a 5xx (or the execution panicked).
func (s *Sandbox) runClaimed(w http.ResponseWriter, slot, key string, e *idemEntry, exec func() result) {
	stored := false
	defer func() {
		s.idemMu.Lock()
		if !stored && s.idem[slot] == e {
			delete(s.idem, slot)
		}
		s.idemMu.Unlock()
		close(e.done)
	}()
	res := exec()
	if res.status >= 500 {
		writeResult(w, res)
		return
	}
	exp := s.now().Add(s.cfg.IdempotencyTTL)
	s.idemMu.Lock()
	if s.idem[slot] == e { // not dropped by a Reset meanwhile
		e.res, e.expires, e.complete = res, exp, true
		stored = true
	}
	s.idemMu.Unlock()
	setIdemHeaders(w, key, false, exp)
	writeResult(w, res)
}

func setIdemHeaders(w http.ResponseWriter, key string, replayed bool, exp time.Time) {
	h := w.Header()
	h.Set("Idempotency-Key", key)
	h.Set("Idempotency-Replayed", strconv.FormatBool(replayed))
	h.Set("Idempotency-Expires", exp.UTC().Format(time.RFC3339))
}

// ---------------------------------------------------------------- writing

func problemResult(status int, reason, title, detail string, ctx map[string]any) result {
	return problemTypeResult(problemType(reason), status, reason, title, detail, ctx)
}

func problemType(reason string) string {
	return "https://api.smartretry.com/errors/" + strings.ReplaceAll(strings.ToLower(reason), "_", "-")
}

func problemTypeResult(typ string, status int, reason, title, detail string, ctx map[string]any) result {
	b, _ := json.Marshal(api.Problem{Type: typ, Title: title, Status: status, Detail: detail, ReasonCode: reason, Context: ctx})
	return result{status: status, body: b, ctype: "application/problem+json"}
}

func writeProblem(w http.ResponseWriter, status int, reason, title, detail string, ctx map[string]any) {
	writeResult(w, problemResult(status, reason, title, detail, ctx))
}

func writeProblemType(w http.ResponseWriter, typ string, status int, reason, title, detail string, ctx map[string]any) {
	writeResult(w, problemTypeResult(typ, status, reason, title, detail, ctx))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "INTERNAL_ERROR", "Internal Server Error", err.Error(), nil)
		return
	}
	writeResult(w, result{status: status, body: b, ctype: "application/json"})
}

func writeResult(w http.ResponseWriter, res result) {
	w.Header().Set("Content-Type", res.ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(res.body)))
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
