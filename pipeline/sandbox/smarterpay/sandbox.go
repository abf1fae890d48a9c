package smarterpay

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	api "github.com/paybatch/paybatch/pipeline/smarterpay"
)

// Sandbox defaults.
const (
	DefaultToken        = "sp_test_token"
	DefaultExpiredToken = "sp_expired_token"
	DefaultSubmitAfter  = 2 * time.Second
	DefaultSettleAfter  = 3 * time.Second
	// KeyTTL is how long an idempotency key and its stored response are kept.
	KeyTTL = 24 * time.Hour
	// MaxListItems caps a create-list POST (the documented API states no cap).
	MaxListItems = 1000

	maxBody = 4 << 20
)

// MandateFixture is a seeded mandate.
type MandateFixture struct {
	ID          string `json:"id"`
	Auddis      string `json:"auddis"`
	DDStatus    string `json:"dd_status"`
	BankAccount string `json:"bank_account"`
	AccountName string `json:"account_name"`
}

// DefaultMandates is the default fixture set: one mandate in each active
// dd_status, one on hold and one in each cancelled spelling.
func DefaultMandates() []MandateFixture {
	return []MandateFixture{
		{ID: "M01SANDBOX000000001", Auddis: "PBSANDBOX0001", DDStatus: "ongoing_collection", BankAccount: "BANK00000001", AccountName: "Ada Lovelace"},
		{ID: "M01SANDBOX000000002", Auddis: "PBSANDBOX0002", DDStatus: "first_collection", BankAccount: "BANK00000002", AccountName: "Charles Babbage"},
		{ID: "M01SANDBOX000000003", Auddis: "PBSANDBOX0003", DDStatus: "new_instructions", BankAccount: "BANK00000003", AccountName: "Grace Hopper"},
		{ID: "M01SANDBOX000000004", Auddis: "PBSANDBOX0004", DDStatus: "final_collection", BankAccount: "BANK00000004", AccountName: "Alan Turing"},
		{ID: "M01SANDBOX000000005", Auddis: "PBSANDBOX0005", DDStatus: "on hold", BankAccount: "BANK00000005", AccountName: "Edsger Dijkstra"},
		{ID: "M01SANDBOX000000006", Auddis: "PBSANDBOX0006", DDStatus: "cancelled", BankAccount: "BANK00000006", AccountName: "Barbara Liskov"},
		{ID: "M01SANDBOX000000007", Auddis: "PBSANDBOX0007", DDStatus: "cancelled by payer", BankAccount: "BANK00000007", AccountName: "Donald Knuth"},
	}
}

// SandboxConfig configures a Sandbox. Zero values take the defaults.
type SandboxConfig struct {
	Tokens        []string // accepted bearer tokens (default sp_test_token)
	ExpiredTokens []string // tokens answered with 498 (default sp_expired_token)
	// Limit is the budget per token in fixed windows: zero → the documented
	// api.Limits().Overall (1000 per 60s); a negative N → unlimited.
	Limit paybatch.Limit
	// Status clock: a payment or credit is pending_submission until
	// SubmitAfter after creation, submitted until SubmitAfter+SettleAfter,
	// then successful or failed (0 → default 2s / 3s; negative → 0).
	SubmitAfter, SettleAfter time.Duration
	Now                      func() time.Time // default time.Now
	Ops                      *sim.OpLog       // ground truth of executed creates (created if nil)
	Stats                    *sim.Stats       // counters (created if nil)
	Mandates                 []MandateFixture // default DefaultMandates()
	// Hold, when set, is called for every create (POST) after its
	// idempotency key has been reserved and before the work executes. Tests
	// use it to keep a request in flight.
	Hold func(r *http.Request)
}

type mandate struct {
	api.Mandate
}

type payment struct {
	id, mandate, auddis string
	req                 api.PaymentRequest
	amount              int64 // recorded amount (0 when the mandate was cancelled)
	requested           int64
	date                string
	paymentType         string
	created             time.Time
	cancelled           bool
}

type credit struct {
	id, mandate string
	req         api.CreditRequest
	amount      int64
	requested   int64
	date        string
	created     time.Time
	cancelled   bool
}

type idemEntry struct {
	fp         [32]byte
	processing bool
	status     int
	body       []byte
	expires    time.Time
}

// Sandbox is a stateful in-memory SmarterPay Cloud API (payments, credits,
// mandates) for paths under /service.svc/. It is an http.Handler and safe for
// concurrent use.
type Sandbox struct {
	cfg     SandboxConfig
	cal     *api.Calendar
	limiter *sim.Limiter
	tokens  map[string]bool
	expired map[string]bool

	mu           sync.Mutex
	seq          uint64 // never reset, so ids stay unique across Reset
	mandates     map[string]*mandate
	mandateOrder []string
	payments     map[string]*payment
	paymentOrder []string
	credits      map[string]*credit
	creditOrder  []string
	idem         map[string]*idemEntry
	idemSweep    int
}

// NewSandbox returns a sandbox loaded with cfg.Mandates.
func NewSandbox(cfg SandboxConfig) *Sandbox {
	if len(cfg.Tokens) == 0 {
		cfg.Tokens = []string{DefaultToken}
	}
	if cfg.ExpiredTokens == nil {
		cfg.ExpiredTokens = []string{DefaultExpiredToken}
	}
	switch {
	case cfg.Limit.N < 0:
		cfg.Limit = paybatch.Limit{}
	case cfg.Limit.IsZero():
		cfg.Limit = api.Limits().Overall
	}
	cfg.SubmitAfter = clockDefault(cfg.SubmitAfter, DefaultSubmitAfter)
	cfg.SettleAfter = clockDefault(cfg.SettleAfter, DefaultSettleAfter)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ops == nil {
		cfg.Ops = &sim.OpLog{}
	}
	if cfg.Stats == nil {
		cfg.Stats = &sim.Stats{}
	}
	if cfg.Mandates == nil {
		cfg.Mandates = DefaultMandates()
	}
	s := &Sandbox{
		cfg:     cfg,
		cal:     api.NewCalendar(),
		limiter: sim.NewLimiter(cfg.Limit, cfg.Now),
		tokens:  make(map[string]bool),
		expired: make(map[string]bool),
	}
	for _, t := range cfg.Tokens {
		s.tokens[t] = true
	}
	for _, t := range cfg.ExpiredTokens {
		s.expired[t] = true
	}
	s.Reset()
	return s
}

func clockDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Reset drops every payment, credit, created mandate, stored idempotency key
// and rate-limit window, and reloads the mandate fixtures. The shared OpLog
// and Stats belong to whoever passed them in and are not touched.
func (s *Sandbox) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mandates = make(map[string]*mandate)
	s.mandateOrder = nil
	s.payments = make(map[string]*payment)
	s.paymentOrder = nil
	s.credits = make(map[string]*credit)
	s.creditOrder = nil
	s.idem = make(map[string]*idemEntry)
	created := s.cfg.Now().UTC().Format(time.RFC3339)
	for _, f := range s.cfg.Mandates {
		m := &mandate{api.Mandate{ID: f.ID, Auddis: f.Auddis, DDStatus: f.DDStatus,
			CustomerBankAccount: f.BankAccount, AccountName: f.AccountName, CreatedAt: created}}
		s.mandates[m.ID] = m
		s.mandateOrder = append(s.mandateOrder, m.ID)
	}
	s.limiter.Reset()
}

// Fixtures returns the mandate fixtures the sandbox was loaded with.
func (s *Sandbox) Fixtures() []MandateFixture {
	return append([]MandateFixture(nil), s.cfg.Mandates...)
}

// Ops is the operation log this sandbox records into.
func (s *Sandbox) Ops() *sim.OpLog { return s.cfg.Ops }

// Calendar is the banking calendar the sandbox applies.
func (s *Sandbox) Calendar() *api.Calendar { return s.cal }

// today is the current civil date in London, where Bacs runs.
func (s *Sandbox) today() time.Time { return api.Today(s.cfg.Now()) }

// response is one answer: what is written and, for creates, stored under
// the idempotency key.
type response struct {
	status int
	body   []byte
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errResponse(http.StatusInternalServerError, "internal", err.Error(), "")
	}
	return response{status: status, body: b}
}

func errResponse(status int, code, msg, field string) response {
	b, _ := json.Marshal(api.ErrorBody{Status: status, Error: statusText(status), Code: code, Message: msg, Field: field})
	return response{status: status, body: b}
}

func statusText(code int) string {
	if code == 498 {
		return "Invalid Token"
	}
	return http.StatusText(code)
}

func (r response) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(r.body)))
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

// ServeHTTP implements http.Handler. Order of checks: route exists →
// bearer token (401/498) → rate limit (429) → Content-Type and
// Idempotency-Key syntax (400) → idempotency store (409/422/replay) → work.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cfg.Stats.Inc(sim.CountRequests)
	resource, id, ok := splitPath(r.URL.Path)
	if !ok {
		errResponse(http.StatusNotFound, api.CodeNotFound, "no such resource: "+r.URL.Path, "").write(w)
		return
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	switch {
	case ok && s.expired[token]:
		errResponse(498, api.CodeTokenExpired, "The bearer token has expired or is otherwise invalid", "").write(w)
		return
	case !ok || !s.tokens[token]:
		w.Header().Set("WWW-Authenticate", `Bearer realm="smarterpay-sandbox"`)
		errResponse(http.StatusUnauthorized, api.CodeUnauthorized, "Missing or unknown bearer token", "").write(w)
		return
	}
	allowed, remaining, reset := s.limiter.Take(token)
	if !s.cfg.Limit.IsZero() {
		// Sandbox addition: SmarterPay documents no rate-limit headers.
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.cfg.Limit.N))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	}
	if !allowed {
		s.cfg.Stats.Inc(sim.CountRateLimited)
		secs := int64((reset.Sub(s.cfg.Now()) + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		errResponse(http.StatusTooManyRequests, api.CodeRateLimited, api.MsgRateLimited, "").write(w)
		return
	}

	switch {
	case r.Method == http.MethodGet && id == "":
		s.list(resource, r.URL.Query()).write(w)
	case r.Method == http.MethodGet:
		s.get(resource, id).write(w)
	case r.Method == http.MethodPost && id == "":
		s.create(w, r, resource, "")
	case r.Method == http.MethodPut && id != "" && resource == "mandate":
		s.create(w, r, resource, id)
	default:
		w.Header().Set("Allow", allowFor(resource, id))
		errResponse(http.StatusMethodNotAllowed, api.CodeMethodNotAllowed,
			fmt.Sprintf("%s is not supported on %s", r.Method, r.URL.Path), "").write(w)
	}
}

func allowFor(resource, id string) string {
	switch {
	case id == "":
		return "GET, POST"
	case resource == "mandate":
		return "GET, PUT"
	}
	return "GET"
}

// splitPath accepts /service.svc/{payment|credit|mandate}[/{id}].
func splitPath(p string) (resource, id string, ok bool) {
	rest, found := strings.CutPrefix(p, api.BasePath+"/")
	if !found {
		return "", "", false
	}
	resource, id, _ = strings.Cut(rest, "/")
	switch resource {
	case "payment", "credit", "mandate":
	default:
		return "", "", false
	}
	if strings.Contains(id, "/") {
		return "", "", false
	}
	return resource, id, true
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// create runs a POST (id "") or a PUT of record id through the idempotency layer.
func (s *Sandbox) create(w http.ResponseWriter, r *http.Request, resource, id string) {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "application/json", "application/vnd.api+json":
	default:
		errResponse(http.StatusBadRequest, api.CodeUnsupportedContent,
			"Content-Type must be application/json or application/vnd.api+json", "").write(w)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > api.MaxKeyLen {
		errResponse(http.StatusBadRequest, api.CodeBadKey,
			fmt.Sprintf("Idempotency-Key is %d characters; at most %d are allowed", len(key), api.MaxKeyLen), "").write(w)
		return
	}
	if i := strings.IndexFunc(key, func(r rune) bool { return !headerValueRune(r) }); i >= 0 {
		errResponse(http.StatusBadRequest, api.CodeBadKey,
			fmt.Sprintf("Idempotency-Key holds %q at position %d; header values allow only A-Z a-z 0-9, space and _:;.,\\/\"'?!(){}[]@<>=-+*#$&`|~^%%", key[i:i+1], i), "").write(w)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		errResponse(http.StatusBadRequest, api.CodeBadRequest, "reading body: "+err.Error(), "").write(w)
		return
	}
	if len(body) > maxBody {
		errResponse(http.StatusRequestEntityTooLarge, api.CodeBadRequest, "body too large", "").write(w)
		return
	}
	token, _ := bearer(r.Header.Get("Authorization"))
	scope := token + "\x00" + key
	if key != "" {
		fp := sha256.Sum256([]byte(r.Method + " " + r.URL.Path + "\n" + string(body)))
		now := s.cfg.Now()
		s.mu.Lock()
		s.sweepLocked(now)
		e := s.idem[scope]
		if e != nil && !now.Before(e.expires) {
			delete(s.idem, scope)
			e = nil
		}
		switch {
		case e != nil && e.fp != fp:
			s.mu.Unlock()
			errResponse(http.StatusUnprocessableEntity, api.CodeKeyReused, api.MsgKeyReused, "").write(w)
			return
		case e != nil && e.processing:
			s.mu.Unlock()
			errResponse(http.StatusConflict, api.CodeKeyInFlight, api.MsgKeyInFlight, "").write(w)
			return
		case e != nil:
			stored := response{status: e.status, body: e.body}
			s.mu.Unlock()
			s.cfg.Stats.Inc(sim.CountReplayed)
			w.Header().Set("idempotency-replay", "true")
			stored.write(w)
			return
		}
		e = &idemEntry{fp: fp, processing: true, expires: now.Add(KeyTTL)}
		s.idem[scope] = e
		s.mu.Unlock()
		done := false
		defer func() {
			if !done { // the work panicked: release the key so a retry can run
				s.mu.Lock()
				delete(s.idem, scope)
				s.mu.Unlock()
			}
		}()
		if s.cfg.Hold != nil {
			s.cfg.Hold(r)
		}
		resp := s.execute(resource, id, key, body)
		s.mu.Lock()
		if resp.status >= 500 {
			delete(s.idem, scope) // 5xx are never stored
		} else {
			e.processing, e.status, e.body = false, resp.status, resp.body
		}
		s.mu.Unlock()
		done = true
		resp.write(w)
		return
	}
	if s.cfg.Hold != nil {
		s.cfg.Hold(r)
	}
	s.execute(resource, id, key, body).write(w)
}

// headerValueRune reports whether r is allowed in a SmarterPay header value.
func headerValueRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("_ :;.,\\/\"'?!(){}[]@<>=-+*#$&`|~^%", r)
}

// sweepLocked drops expired keys every 1024 reservations so memory stays bounded.
func (s *Sandbox) sweepLocked(now time.Time) {
	s.idemSweep++
	if s.idemSweep < 1024 {
		return
	}
	s.idemSweep = 0
	for k, e := range s.idem {
		if !e.processing && !now.Before(e.expires) {
			delete(s.idem, k)
		}
	}
}

func (s *Sandbox) execute(resource, id, key string, body []byte) response {
	switch {
	case id != "":
		return s.updateMandate(id, body)
	case resource == "payment":
		return s.createPayments(key, body)
	case resource == "credit":
		return s.createCredits(key, body)
	default:
		return s.createMandate(body)
	}
}

// decodeStrict decodes exactly one JSON value, refusing unknown fields and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON body")
	}
	return nil
}

// fieldError is a validation failure naming the field.
type fieldError struct {
	status int
	code   string
	field  string
	msg    string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func (e *fieldError) response() response {
	st := e.status
	if st == 0 {
		st = http.StatusBadRequest
	}
	code := e.code
	if code == "" {
		code = api.CodeValidation
	}
	return errResponse(st, code, e.msg, e.field)
}

func bad(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

func (s *Sandbox) nextID(prefix string) string {
	s.seq++
	n := strings.ToUpper(strconv.FormatUint(s.seq, 36))
	return prefix + "01" + strings.Repeat("0", max(0, 16-len(n))) + n
}

// pounds renders pence as an exact decimal string ("25.32").
func pounds(p int64) string {
	return fmt.Sprintf("%d.%02d", p/100, p%100)
}

func normStatus(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_")
}

// mandateState classifies a dd_status: "active", "cancelled" or "inactive".
func mandateState(dd string) string {
	switch normStatus(dd) {
	case "new_instruction", "new_instructions", "first_collection", "ongoing_collection", "final_collection":
		return "active"
	case "cancelled", "cancelled_by_payer", "cancelled_by_originator":
		return "cancelled"
	}
	return "inactive"
}

func paymentType(dd string) string {
	switch normStatus(dd) {
	case "new_instruction", "new_instructions", "first_collection":
		return "first collection"
	case "final_collection":
		return "final collection"
	}
	return "ongoing collection"
}

// resolveMandateLocked finds a mandate by id and/or AUDDIS reference.
func (s *Sandbox) resolveMandateLocked(prefix, id, auddis string) (*mandate, *fieldError) {
	var m *mandate
	if id != "" {
		m = s.mandates[id]
		if m == nil {
			return nil, &fieldError{code: api.CodeMandateNotFound, field: prefix + "mandate", msg: fmt.Sprintf("mandate %q does not exist", id)}
		}
		if auddis != "" && m.Auddis != auddis {
			return nil, bad(prefix+"auddis", "auddis %q is not the reference of mandate %q", auddis, id)
		}
		return m, nil
	}
	for _, mid := range s.mandateOrder {
		if c := s.mandates[mid]; c.Auddis == auddis {
			return c, nil
		}
	}
	return nil, &fieldError{code: api.CodeMandateNotFound, field: prefix + "auddis", msg: fmt.Sprintf("no mandate has auddis %q", auddis)}
}

func (s *Sandbox) checkDate(field, v string) (string, *fieldError) {
	if v == "" {
		return "", bad(field, "%s is required (YYYY-MM-DD)", field)
	}
	d, err := api.ParseDate(v)
	if err != nil {
		return "", bad(field, "%v", err)
	}
	got, _, err := s.cal.Collectable(d, s.today())
	if err != nil {
		return "", &fieldError{code: api.CodeDateInPast, field: field, msg: fmt.Sprintf("%s %v", field, err)}
	}
	return got.Format(api.DateLayout), nil
}

func checkLen(field, v string, n int) *fieldError {
	if len([]rune(v)) > n {
		return bad(field, "%s is %d characters; at most %d are allowed", field, len([]rune(v)), n)
	}
	return nil
}

// createPayments handles POST /payment with {"payment":{…}} or {"payments":[…]}.
// A list is validated as a whole before anything executes: one invalid item
// fails the request (400 naming payments[i].field) and creates nothing.
func (s *Sandbox) createPayments(key string, body []byte) response {
	var env struct {
		Payment  *api.PaymentRequest  `json:"payment"`
		Payments []api.PaymentRequest `json:"payments"`
	}
	if err := decodeStrict(body, &env); err != nil {
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, "invalid JSON body: "+err.Error(), "")
	}
	list := env.Payments != nil
	var items []api.PaymentRequest
	switch {
	case env.Payment != nil && list:
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, `send either "payment" or "payments", not both`, "")
	case env.Payment != nil:
		items = []api.PaymentRequest{*env.Payment}
	case list:
		if len(env.Payments) == 0 || len(env.Payments) > MaxListItems {
			return errResponse(http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf(`"payments" must hold 1 to %d items`, MaxListItems), "payments")
		}
		items = env.Payments
	default:
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, `body must be {"payment":{…}} or {"payments":[…]}`, "")
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	made := make([]*payment, 0, len(items))
	for i, it := range items {
		prefix := "payment."
		if list {
			prefix = fmt.Sprintf("payments[%d].", i)
		}
		p, ferr := s.validatePaymentLocked(prefix, it)
		if ferr != nil {
			return ferr.response()
		}
		made = append(made, p)
	}
	out := make([]api.Payment, len(made))
	for i, p := range made {
		p.id = s.nextID("P")
		p.created = now
		s.payments[p.id] = p
		s.paymentOrder = append(s.paymentOrder, p.id)
		s.recordLocked("payment", itemKey(key, list, i), p.req.CustomReference, p.amount, map[string]string{"id": p.id, "mandate": p.mandate}, now)
		out[i] = s.paymentView(p, now)
	}
	if list {
		return jsonResponse(http.StatusCreated, map[string][]api.Payment{"payments": out})
	}
	return jsonResponse(http.StatusCreated, map[string]api.Payment{"payment": out[0]})
}

func itemKey(key string, list bool, i int) string {
	if !list || key == "" {
		return key
	}
	return key + "#" + strconv.Itoa(i)
}

func (s *Sandbox) recordLocked(op, key, ref string, amount int64, ids map[string]string, now time.Time) {
	s.cfg.Ops.Record(sim.Operation{Provider: "smarterpay", Operation: op, IdempotencyKey: key,
		Reference: ref, Amount: pounds(amount), Currency: "GBP", IDs: ids, Time: now})
	s.cfg.Stats.Inc(sim.CountExecuted)
}

func (s *Sandbox) validatePaymentLocked(prefix string, it api.PaymentRequest) (*payment, *fieldError) {
	if it.Amount <= 0 {
		return nil, bad(prefix+"amount", "amount is required: a positive whole number of pence")
	}
	if it.Mandate == "" && it.Auddis == "" {
		return nil, bad(prefix+"mandate", "mandate or auddis is required")
	}
	for _, c := range []struct {
		f, v string
		n    int
	}{{"default_narrative", it.DefaultNarrative, 18}, {"metadata", it.Metadata, 1000}} {
		if e := checkLen(prefix+c.f, c.v, c.n); e != nil {
			return nil, e
		}
	}
	if it.RecordType != "" && it.RecordType != "direct_debit" {
		return nil, bad(prefix+"record_type", "record_type %q: only direct_debit can be created here", it.RecordType)
	}
	date, ferr := s.checkDate(prefix+"collection_date", it.CollectionDate)
	if ferr != nil {
		return nil, ferr
	}
	m, ferr := s.resolveMandateLocked(prefix, it.Mandate, it.Auddis)
	if ferr != nil {
		return nil, ferr
	}
	p := &payment{mandate: m.ID, auddis: m.Auddis, req: it, requested: int64(it.Amount), amount: int64(it.Amount),
		date: date, paymentType: paymentType(m.DDStatus)}
	switch mandateState(m.DDStatus) {
	case "cancelled":
		p.cancelled, p.amount = true, 0
	case "inactive":
		return nil, &fieldError{code: api.CodeMandateNotActive, field: prefix + "mandate",
			msg: fmt.Sprintf("mandate %s has dd_status %q; payments need an active mandate", m.ID, m.DDStatus)}
	}
	return p, nil
}

// Failure triggers, by amount in pence modulo 100.
type trigger struct{ report, code, desc string }

func paymentTrigger(pence int64) *trigger {
	switch pence % 100 {
	case 51:
		return &trigger{"ARUDD", "0", "Refer to payer"}
	case 52:
		return &trigger{"ARUDD", "1", "Instruction cancelled"}
	case 53:
		return &trigger{"ARUDD", "B", "Account closed"}
	}
	return nil
}

func creditTrigger(pence int64) *trigger {
	switch pence % 100 {
	case 51:
		return &trigger{"ARUCS", "5", "No account"}
	case 52:
		return &trigger{"ARUCS", "B", "Account closed"}
	case 53:
		return &trigger{"ARUCS", "2", "Beneficiary deceased"}
	}
	return nil
}

// statusAt is the clock-driven status of a record created at created.
func (s *Sandbox) statusAt(created, now time.Time, cancelled bool, t *trigger) (string, *trigger) {
	age := now.Sub(created)
	switch {
	case cancelled:
		return api.StatusCancelled, nil
	case age < s.cfg.SubmitAfter:
		return api.StatusPendingSubmission, nil
	case age < s.cfg.SubmitAfter+s.cfg.SettleAfter:
		return api.StatusSubmitted, nil
	case t != nil:
		return api.StatusFailed, t
	}
	return api.StatusSuccessful, nil
}

func (s *Sandbox) paymentView(p *payment, now time.Time) api.Payment {
	st, t := s.statusAt(p.created, now, p.cancelled, paymentTrigger(p.requested))
	v := api.Payment{ID: p.id, Amount: api.StringPence(p.amount), Auddis: p.auddis, Mandate: p.mandate,
		CollectionDate: p.date, CreatedAt: p.created.UTC().Format(time.RFC3339),
		CustomReference: p.req.CustomReference, DefaultNarrative: p.req.DefaultNarrative,
		Description: p.req.Description, Metadata: p.req.Metadata, UsersReference: p.req.UsersReference,
		PaymentType: p.paymentType, RecordType: "direct_debit", RelatedPayment: " ", Status: st}
	if t != nil {
		v.BacsReport, v.BacsReasonCode, v.BacsDescription = t.report, t.code, t.desc
	}
	return v
}

// createCredits handles POST /credit with {"credit":{…}} or {"credits":[…]}.
func (s *Sandbox) createCredits(key string, body []byte) response {
	var env struct {
		Credit  *api.CreditRequest  `json:"credit"`
		Credits []api.CreditRequest `json:"credits"`
	}
	if err := decodeStrict(body, &env); err != nil {
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, "invalid JSON body: "+err.Error(), "")
	}
	list := env.Credits != nil
	var items []api.CreditRequest
	switch {
	case env.Credit != nil && list:
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, `send either "credit" or "credits", not both`, "")
	case env.Credit != nil:
		items = []api.CreditRequest{*env.Credit}
	case list:
		if len(env.Credits) == 0 || len(env.Credits) > MaxListItems {
			return errResponse(http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf(`"credits" must hold 1 to %d items`, MaxListItems), "credits")
		}
		items = env.Credits
	default:
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, `body must be {"credit":{…}} or {"credits":[…]}`, "")
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	made := make([]*credit, 0, len(items))
	for i, it := range items {
		prefix := "credit."
		if list {
			prefix = fmt.Sprintf("credits[%d].", i)
		}
		c, ferr := s.validateCreditLocked(prefix, it)
		if ferr != nil {
			return ferr.response()
		}
		made = append(made, c)
	}
	out := make([]api.Credit, len(made))
	for i, c := range made {
		c.id = s.nextID("C")
		c.created = now
		s.credits[c.id] = c
		s.creditOrder = append(s.creditOrder, c.id)
		ids := map[string]string{"id": c.id}
		if c.mandate != "" {
			ids["mandate"] = c.mandate
		}
		s.recordLocked("credit", itemKey(key, list, i), c.req.Reference, c.amount, ids, now)
		out[i] = s.creditView(c, now)
	}
	if list {
		return jsonResponse(http.StatusCreated, map[string][]api.Credit{"credits": out})
	}
	return jsonResponse(http.StatusCreated, map[string]api.Credit{"credit": out[0]})
}

func (s *Sandbox) validateCreditLocked(prefix string, it api.CreditRequest) (*credit, *fieldError) {
	if it.Amount <= 0 {
		return nil, bad(prefix+"amount", "amount is required: a positive whole number of pence")
	}
	if strings.TrimSpace(it.Description) == "" {
		return nil, bad(prefix+"description", "description is required")
	}
	for _, c := range []struct {
		f, v string
		n    int
	}{{"description", it.Description, 100}, {"default_narrative", it.DefaultNarrative, 18}, {"rti", it.RTI, 4}} {
		if e := checkLen(prefix+c.f, c.v, c.n); e != nil {
			return nil, e
		}
	}
	for _, r := range it.RTI {
		if !(r == '/' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return nil, bad(prefix+"rti", "rti may hold only /, A-Z and 0-9")
		}
	}
	if it.Auddis == "" && it.BankAccount == "" {
		return nil, bad(prefix+"auddis", "auddis or bank_account is required (the sandbox never falls back to a default account)")
	}
	date, ferr := s.checkDate(prefix+"credit_date", it.CreditDate)
	if ferr != nil {
		return nil, ferr
	}
	c := &credit{req: it, amount: int64(it.Amount), requested: int64(it.Amount), date: date}
	if it.Auddis != "" {
		m, ferr := s.resolveMandateLocked(prefix, "", it.Auddis)
		if ferr != nil {
			return nil, ferr
		}
		if it.BankAccount != "" && it.BankAccount != m.CustomerBankAccount {
			return nil, bad(prefix+"bank_account", "bank_account %q is not the account of mandate %s", it.BankAccount, m.ID)
		}
		c.mandate = m.ID
		if mandateState(m.DDStatus) == "cancelled" {
			c.cancelled, c.amount = true, 0
		}
		return c, nil
	}
	for _, mid := range s.mandateOrder {
		if s.mandates[mid].CustomerBankAccount == it.BankAccount {
			return c, nil
		}
	}
	return nil, bad(prefix+"bank_account", "bank account %q does not exist", it.BankAccount)
}

func (s *Sandbox) creditView(c *credit, now time.Time) api.Credit {
	st, t := s.statusAt(c.created, now, c.cancelled, creditTrigger(c.requested))
	auddis, bank := c.req.Auddis, c.req.BankAccount
	if m := s.mandates[c.mandate]; m != nil && bank == "" {
		bank = m.CustomerBankAccount
	}
	v := api.Credit{ID: c.id, Amount: api.StringPence(c.amount), Auddis: auddis, Mandate: c.mandate, BankAccount: bank,
		ClientBankAccountID: c.req.ClientBankAccountID, CreditDate: c.date, CreatedAt: c.created.UTC().Format(time.RFC3339),
		Description: c.req.Description, DefaultNarrative: c.req.DefaultNarrative, Reference: c.req.Reference,
		RTI: c.req.RTI, RecordType: "direct_credit", Status: st}
	if t != nil {
		v.BacsReport, v.BacsReasonCode, v.BacsDescription = t.report, t.code, t.desc
	}
	return v
}

// createMandate handles POST /mandate {"mandate":{…}}.
func (s *Sandbox) createMandate(body []byte) response {
	var env struct {
		Mandate *api.MandateRequest `json:"mandate"`
	}
	if err := decodeStrict(body, &env); err != nil {
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, "invalid JSON body: "+err.Error(), "")
	}
	if env.Mandate == nil {
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, `body must be {"mandate":{…}}`, "")
	}
	in := *env.Mandate
	if strings.TrimSpace(in.CustomerBankAccount) == "" {
		return bad("mandate.customer_bank_account", "customer_bank_account is required").response()
	}
	dd := in.DDStatus
	if dd == "" {
		dd = "new_instructions"
	}
	switch normStatus(dd) {
	case "on_hold", "new_instruction", "new_instructions", "first_collection", "ongoing_collection", "cancelled":
	default:
		return bad("mandate.dd_status", "dd_status %q cannot be set (on hold, new instruction, first collection, ongoing collection, cancelled)", in.DDStatus).response()
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID("M")
	auddis := in.Auddis
	if auddis == "" {
		auddis = "PB" + id[len(id)-12:]
	}
	if err := api.CheckAuddis(auddis); err != nil {
		return bad("mandate.auddis", "%v", err).response()
	}
	for _, mid := range s.mandateOrder {
		if s.mandates[mid].Auddis == auddis {
			return bad("mandate.auddis", "auddis %q is already used by mandate %s", auddis, mid).response()
		}
	}
	m := &mandate{api.Mandate{ID: id, Auddis: auddis, DDStatus: dd, CustomerBankAccount: in.CustomerBankAccount,
		ClientBankAccountID: in.ClientBankAccountID, CreatedAt: now.UTC().Format(time.RFC3339)}}
	s.mandates[id] = m
	s.mandateOrder = append(s.mandateOrder, id)
	return jsonResponse(http.StatusCreated, map[string]api.Mandate{"mandate": m.Mandate})
}

// updateMandate handles PUT /mandate/{id} {"mandate":{"dd_status":"…"}}.
// Only dd_status can be changed (bank accounts are not simulated).
// Cancelling a mandate cancels, with amount 0, every payment and credit on
// it that is still pending_submission (as documented); records already
// submitted are left to run their course. These cascaded cancellations are
// not operations in the operation log: nothing new executed.
func (s *Sandbox) updateMandate(id string, body []byte) response {
	var env struct {
		Mandate *struct {
			DDStatus string `json:"dd_status"`
		} `json:"mandate"`
	}
	if err := decodeStrict(body, &env); err != nil {
		return errResponse(http.StatusBadRequest, api.CodeBadRequest, "invalid JSON body: "+err.Error(), "")
	}
	if env.Mandate == nil || env.Mandate.DDStatus == "" {
		return bad("mandate.dd_status", `body must be {"mandate":{"dd_status":"…"}}`).response()
	}
	dd := env.Mandate.DDStatus
	switch normStatus(dd) {
	case "on_hold", "new_instruction", "new_instructions", "first_collection", "ongoing_collection", "final_collection",
		"cancelled", "cancelled_by_payer", "cancelled_by_originator":
	default:
		return bad("mandate.dd_status", "unknown dd_status %q", dd).response()
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mandates[id]
	if m == nil {
		return errResponse(http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("mandate %q does not exist", id), "")
	}
	m.DDStatus = dd
	if mandateState(dd) == "cancelled" {
		for _, pid := range s.paymentOrder {
			p := s.payments[pid]
			if p.mandate == id && !p.cancelled && now.Sub(p.created) < s.cfg.SubmitAfter {
				p.cancelled, p.amount = true, 0
			}
		}
		for _, cid := range s.creditOrder {
			c := s.credits[cid]
			if c.mandate == id && !c.cancelled && now.Sub(c.created) < s.cfg.SubmitAfter {
				c.cancelled, c.amount = true, 0
			}
		}
	}
	return jsonResponse(http.StatusOK, map[string]api.Mandate{"mandate": m.Mandate})
}

func (s *Sandbox) get(resource, id string) response {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch resource {
	case "payment":
		if p := s.payments[id]; p != nil {
			return jsonResponse(http.StatusOK, map[string]api.Payment{"payment": s.paymentView(p, now)})
		}
	case "credit":
		if c := s.credits[id]; c != nil {
			return jsonResponse(http.StatusOK, map[string]api.Credit{"credit": s.creditView(c, now)})
		}
	case "mandate":
		if m := s.mandates[id]; m != nil {
			return jsonResponse(http.StatusOK, map[string]api.Mandate{"mandate": m.Mandate})
		}
	}
	return errResponse(http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("%s %q does not exist", resource, id), "")
}

// List filters per resource. Unknown query parameters are refused (400) so
// a misspelt filter never silently returns every record.
var listFilters = map[string][]string{
	"payment": {"custom_reference", "status", "mandate", "auddis", "collection_date"},
	"credit":  {"reference", "status", "mandate", "auddis", "bank_account", "credit_date"},
	"mandate": {"auddis", "dd_status", "customer_bank_account"},
}

func (s *Sandbox) list(resource string, q url.Values) response {
	allowed := listFilters[resource]
	for k := range q {
		if !contains(allowed, k) {
			return errResponse(http.StatusBadRequest, api.CodeBadRequest,
				fmt.Sprintf("unknown filter %q; %s lists filter by %s", k, resource, strings.Join(allowed, ", ")), k)
		}
	}
	match := func(field, v string) bool {
		want, ok := q[field]
		return !ok || contains(want, v)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch resource {
	case "payment":
		out := []api.Payment{}
		for _, id := range s.paymentOrder {
			v := s.paymentView(s.payments[id], now)
			if match("custom_reference", v.CustomReference) && match("status", v.Status) && match("mandate", v.Mandate) &&
				match("auddis", v.Auddis) && match("collection_date", v.CollectionDate) {
				out = append(out, v)
			}
		}
		return jsonResponse(http.StatusOK, map[string][]api.Payment{"payments": out})
	case "credit":
		out := []api.Credit{}
		for _, id := range s.creditOrder {
			v := s.creditView(s.credits[id], now)
			if match("reference", v.Reference) && match("status", v.Status) && match("mandate", v.Mandate) &&
				match("auddis", v.Auddis) && match("bank_account", v.BankAccount) && match("credit_date", v.CreditDate) {
				out = append(out, v)
			}
		}
		return jsonResponse(http.StatusOK, map[string][]api.Credit{"credits": out})
	default:
		out := []api.Mandate{}
		for _, id := range s.mandateOrder {
			m := s.mandates[id].Mandate
			if match("auddis", m.Auddis) && match("dd_status", m.DDStatus) && match("customer_bank_account", m.CustomerBankAccount) {
				out = append(out, m)
			}
		}
		return jsonResponse(http.StatusOK, map[string][]api.Mandate{"mandates": out})
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
