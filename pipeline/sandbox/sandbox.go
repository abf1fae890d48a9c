// Package sandbox is the combined sandbox server of both provider APIs:
// SmartRetry under /v1/… and /health/…, SmarterPay under /service.svc/…,
// and the sandbox's own control endpoints under /_sandbox/:
//
//	GET  /_sandbox/fixtures    the fixtures it started from (amounts as exact strings)
//	GET  /_sandbox/operations  every executed state-changing operation (sim.Operation)
//	GET  /_sandbox/stats       counters: requests, executed, replayed, rate_limited, faults.*
//	POST /_sandbox/reset       back to the fixtures: ops, stats, idempotency, limits cleared
//
// Faults (Options.Faults) apply to the provider APIs only, never to
// /_sandbox/ or /health/. New builds a Server (an http.Handler);
// sandboxtest.NewServer runs one on 127.0.0.1:0 for tests, the way httptest does;
// `paybatch sandbox` serves one from the command line.
package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	"github.com/paybatch/paybatch/pipeline/sandbox/smarterpay"
	"github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	spapi "github.com/paybatch/paybatch/pipeline/smarterpay"
)

// Options configure a Server. Zero values take each provider's defaults.
type Options struct {
	// Seed makes faults and issued ids reproducible.
	Seed int64
	// Faults is a sim.ParseFaults spec, e.g. "5xx=0.1,lost=0.02,latency=20ms±10ms".
	Faults string
	// Fixtures nil → each provider's default set.
	Fixtures *Fixtures
	// Now is the clock of both providers; nil → time.Now.
	Now func() time.Time
	// SmartRetry holds limits, delays and hooks of the SmartRetry sandbox;
	// its Now, Ops, Stats, Fixtures and Seed are set by New.
	SmartRetry smartretry.SandboxConfig
	// SmarterPay holds the limit, status clock and hooks of the SmarterPay
	// sandbox; its Now, Ops, Stats and Mandates are set by New.
	SmarterPay smarterpay.SandboxConfig
}

// Fixtures is the --fixtures file format and the body of
// GET /_sandbox/fixtures.
type Fixtures struct {
	SmartRetry struct {
		Transactions []smartretry.TransactionFixture `json:"transactions"`
	} `json:"smartretry"`
	SmarterPay struct {
		Mandates []smarterpay.MandateFixture `json:"mandates"`
	} `json:"smarterpay"`
}

// DefaultFixtures returns both providers' default sets.
func DefaultFixtures() *Fixtures {
	f := &Fixtures{}
	f.SmartRetry.Transactions = smartretry.DefaultFixtures()
	f.SmarterPay.Mandates = smarterpay.DefaultMandates()
	return f
}

// LoadFixtures reads and validates a fixtures file. A provider section that
// is absent keeps that provider's defaults; unknown fields are refused so a
// misspelt field is not silently dropped.
func LoadFixtures(r io.Reader) (*Fixtures, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading fixtures: %w", err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("fixtures: not a JSON object: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f Fixtures
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("fixtures: %w (want {\"smartretry\":{\"transactions\":[…]},\"smarterpay\":{\"mandates\":[…]}})", err)
	}
	def := DefaultFixtures()
	if _, ok := probe["smartretry"]; !ok {
		f.SmartRetry = def.SmartRetry
	}
	if _, ok := probe["smarterpay"]; !ok {
		f.SmarterPay = def.SmarterPay
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks every fixture.
func (f *Fixtures) Validate() error {
	var errs []error
	if err := smartretry.ValidateFixtures(f.SmartRetry.Transactions); err != nil {
		errs = append(errs, fmt.Errorf("fixtures: %w", err))
	}
	if err := smarterpay.CheckFixtures(f.SmarterPay.Mandates); err != nil {
		errs = append(errs, fmt.Errorf("fixtures: %w", err))
	}
	return errors.Join(errs...)
}

// Server serves both sandboxes and the control endpoints.
type Server struct {
	opts   Options
	ops    *sim.OpLog
	stats  *sim.Stats
	faults *sim.Faults
	sr     *smartretry.Sandbox
	sp     *smarterpay.Sandbox
	api    http.Handler // providers behind faults
}

// New builds a server.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Fixtures == nil {
		opts.Fixtures = DefaultFixtures()
	} else if err := opts.Fixtures.Validate(); err != nil {
		return nil, err
	}
	faults, err := sim.ParseFaults(opts.Faults, opts.Seed)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, ops: &sim.OpLog{}, stats: &sim.Stats{}, faults: faults}

	src := opts.SmartRetry
	src.Now, src.Ops, src.Stats, src.Seed = opts.Now, s.ops, s.stats, opts.Seed
	src.Fixtures = opts.Fixtures.SmartRetry.Transactions
	if src.Fixtures == nil {
		src.Fixtures = []smartretry.TransactionFixture{}
	}
	s.sr = smartretry.NewSandbox(src)

	spc := opts.SmarterPay
	spc.Now, spc.Ops, spc.Stats = opts.Now, s.ops, s.stats
	spc.Mandates = opts.Fixtures.SmarterPay.Mandates
	if spc.Mandates == nil {
		spc.Mandates = []smarterpay.MandateFixture{}
	}
	s.sp = smarterpay.NewSandbox(spc)

	mux := http.NewServeMux()
	mux.Handle("/v1/", s.sr)
	mux.Handle("/health", s.sr)
	mux.Handle("/health/", s.sr)
	mux.Handle(spapi.BasePath+"/", s.sp)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found",
			"detail": fmt.Sprintf("no endpoint %s; SmartRetry is under /v1/ and /health/, SmarterPay under /service.svc/, the sandbox under /_sandbox/", r.URL.Path)})
	})
	s.api = faults.Wrap(mux, s.stats)
	return s, nil
}

// ServeHTTP routes /_sandbox/ to the control endpoints and everything else
// to the providers (behind faults).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sandbox" || strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		s.serveControl(w, r)
		return
	}
	s.api.ServeHTTP(w, r)
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	route := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_sandbox/"), "/")
	want := http.MethodGet
	if route == "reset" {
		want = http.MethodPost
	}
	switch route {
	case "fixtures", "operations", "stats", "reset":
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found",
			"detail": "sandbox endpoints: GET /_sandbox/fixtures, GET /_sandbox/operations, GET /_sandbox/stats, POST /_sandbox/reset"})
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed", "detail": "use " + want})
		return
	}
	switch route {
	case "fixtures":
		writeJSON(w, http.StatusOK, s.Fixtures())
	case "operations":
		writeJSON(w, http.StatusOK, s.Operations())
	case "stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case "reset":
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	}
}

// Operations returns every executed state-changing operation of both
// providers, in execution order.
func (s *Server) Operations() []sim.Operation { return s.ops.All() }

// Stats returns the counters.
func (s *Server) Stats() map[string]int64 { return s.stats.Snapshot() }

// Fixtures returns the fixtures the server started from.
func (s *Server) Fixtures() *Fixtures {
	f := &Fixtures{}
	f.SmartRetry.Transactions = s.sr.Fixtures()
	f.SmarterPay.Mandates = s.sp.Fixtures()
	return f
}

// Reset clears operations, counters, idempotency stores and rate-limit
// windows, and returns every transaction and mandate to its fixture.
func (s *Server) Reset() {
	s.sr.Reset()
	s.sp.Reset()
	s.ops.Reset()
	s.stats.Reset()
}

// SmartRetry returns the SmartRetry sandbox.
func (s *Server) SmartRetry() *smartretry.Sandbox { return s.sr }

// SmarterPay returns the SmarterPay sandbox.
func (s *Server) SmarterPay() *smarterpay.Sandbox { return s.sp }

// Close releases requests held by hang faults; call it before shutting the
// HTTP server down.
func (s *Server) Close() { s.faults.Close() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
