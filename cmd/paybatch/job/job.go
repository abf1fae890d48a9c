// Package job is what paybatch does with batches, as the CLI, the demo and
// the web server all call it: Submit sends files exactly once and polls them,
// Status polls and summarises a journal, and Run executes a whole job file —
// validate, submit, poll, reconcile, write the report and e-mail it.
//
// Callers keep flags, printing and process wiring. Nothing here reads the
// environment: credentials, the clock, the logger and the SMTP settings come
// in explicitly (Credentials, Deps). Every error carries a paybatch.ErrorKind
// so a caller can tell "fix the input, nothing was sent" from "stopped part
// way, run again to resume".
//
// The package sits under cmd/paybatch because it is the one place that wires
// the stages together (readers → pipeline → reconcile → writers); the stages
// themselves never import it.
package job

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smartretry"
	"github.com/paybatch/paybatch/writers"
)

// Standard names of the environment variables holding each provider's
// credential and endpoint. The job package never reads them; they name the
// variable to fix in messages.
const (
	SmartRetryKeyVar = "SMARTRETRY_API_KEY"
	SmartRetryURLVar = "SMARTRETRY_BASE_URL"
	SmarterPayTokVar = "SMARTERPAY_TOKEN"
	SmarterPayURLVar = "SMARTERPAY_BASE_URL"
)

// Credentials are one provider's API credential and endpoint.
type Credentials struct {
	Secret  string // SmartRetry API key or SmarterPay token
	BaseURL string // "" → the provider's production endpoint
	// Where they came from, for messages ("set SMARTRETRY_API_KEY"); ""
	// → the provider's standard variable names.
	SecretVar, BaseURLVar string
}

// Standard returns the standard variable names of provider p: its
// credential, then its endpoint.
func Standard(p paybatch.Provider) (secretVar, baseURLVar string) {
	if p == paybatch.SmarterPay {
		return SmarterPayTokVar, SmarterPayURLVar
	}
	return SmartRetryKeyVar, SmartRetryURLVar
}

// FromEnv reads provider p's credentials from the standard variables
// through getenv (os.Getenv in the CLI).
func FromEnv(getenv func(string) string, p paybatch.Provider) Credentials {
	sv, uv := Standard(p)
	return Credentials{Secret: getenv(sv), BaseURL: getenv(uv), SecretVar: sv, BaseURLVar: uv}
}

func (c Credentials) vars(p paybatch.Provider) (secretVar, baseURLVar string) {
	sv, uv := Standard(p)
	if c.SecretVar != "" {
		sv = c.SecretVar
	}
	if c.BaseURLVar != "" {
		uv = c.BaseURLVar
	}
	return sv, uv
}

// Deps is what a job needs from its caller besides its request.
type Deps struct {
	Now func() time.Time // nil → time.Now
	Log *slog.Logger     // nil → discard
	// Say receives one line of the job's story for a person ("submitting
	// refunds.csv: 8 rows (USD 80.00)"); nil → dropped.
	Say func(line string)
	// Progress, when set, is given the engine settings before each send or
	// poll phase, to install its Progress callback (and, if it wants, its
	// own Logger); it returns the function that ends its display.
	Progress func(cfg *pipeline.Config, total int) (stop func())
	// Mail returns the SMTP settings for mailing the report to `to`; nil
	// refuses e-mail with a configuration error.
	Mail    func(to []string) (writers.MailConfig, error)
	Version string // written into reports
	// Checkpoint, when set, is called by Run at named points where a step's
	// work is done but not yet recorded in the journal ("submit",
	// "reconcile", "report", "email"). It is for tests that kill the
	// process there; nil in the CLI.
	Checkpoint func(point string)
	// Open opens an input file (a batch to validate and send); nil →
	// os.Open. Each input is opened once per Submit or Run and read, hashed
	// and sent through that one handle (tests count the opens).
	Open func(path string) (*os.File, error)
	// Paced is pipeline.Config.Paced for every run of the job (nil: the
	// engine changes nothing).
	Paced func() (done func())
	// JournalLarge is journal.Options.Large for the DuckDB journal a
	// Submit opens: called once, when it turns out large (nil: nothing).
	JournalLarge func()
}

func (d *Deps) defaults() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.Say == nil {
		d.Say = func(string) {}
	}
}

func (d *Deps) checkpoint(point string) {
	if d.Checkpoint != nil {
		d.Checkpoint(point)
	}
}

func (d *Deps) say(format string, args ...any) { d.Say(fmt.Sprintf(format, args...)) }

func (d *Deps) progress(cfg *pipeline.Config, total int) func() {
	if d.Progress == nil {
		return func() {}
	}
	return d.Progress(cfg, total)
}

// Engine holds the submission engine's tunables that a caller may set.
// Zero values take the provider's documented limits and the engine's
// defaults.
type Engine struct {
	// Contracted holds the contracted payment limit of each provider's
	// credential (see pipeline.Config.Contracted); the key "" stands for
	// the provider of the run.
	Contracted             map[paybatch.Provider]paybatch.Limit
	SubmitRate, StatusRate paybatch.Limit // can only lower the limits (documented or contracted)
	Concurrency            int            // 0 → sized from rate × latency
	PollDeadline           time.Duration  // 0 → the engine's default
	NoPoll                 bool
}

func (e Engine) config(d *Deps, p paybatch.Provider) pipeline.Config {
	c, ok := e.Contracted[p]
	if !ok {
		c = e.Contracted[""]
	}
	return pipeline.Config{Provider: p, Contracted: c, SubmitRate: e.SubmitRate, StatusRate: e.StatusRate,
		Concurrency: e.Concurrency, PollDeadline: e.PollDeadline, NoPoll: e.NoPoll, Now: d.Now, Logger: d.Log, Paced: d.Paced}
}

// newPacer builds cfg's pacer (cfg.Pacer) under its limits; a limit the
// provider announces below them is said once, through d.Say and the log.
func newPacer(d *Deps, cfg *pipeline.Config) *pipeline.Pacer {
	p := pipeline.NewPacer(cfg.Limits())
	p.SetNotify(func(msg string) {
		d.Log.Warn(msg)
		d.Say(fmt.Sprintf("%s: %s", cfg.Provider, msg))
	})
	cfg.Pacer = p
	return p
}

// ParseContracted parses a contracted limit: "N/DURATION" for the provider
// of the run, or "PROVIDER=N/DURATION[,PROVIDER=N/DURATION]" per provider
// ("smartretry=300/1s,smarterpay=3000/60s").
func ParseContracted(s string) (map[paybatch.Provider]paybatch.Limit, error) {
	out := map[paybatch.Provider]paybatch.Limit{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		var prov paybatch.Provider
		if name, lim, ok := strings.Cut(part, "="); ok {
			p, err := paybatch.ParseProvider(strings.TrimSpace(name))
			if err != nil {
				return nil, fmt.Errorf("%q: %w", part, err)
			}
			prov, part = p, lim
		}
		l, err := paybatch.ParseLimit(part)
		if err != nil {
			return nil, err
		}
		if _, dup := out[prov]; dup {
			return nil, fmt.Errorf("%q: a second contracted limit for %s", s, cmp.Or(string(prov), "the run's provider"))
		}
		out[prov] = l
	}
	return out, nil
}

// NewClient builds provider p's API client from explicit credentials. Errors
// (no credential, plain http to a non-loopback host) are of kind
// paybatch.ErrConfig and name the variable to fix.
func NewClient(p paybatch.Provider, c Credentials, pacer *pipeline.Pacer) (pipeline.Provider, error) {
	sv, uv := c.vars(p)
	if c.BaseURL != "" {
		if _, err := paybatch.ParseEndpoint(c.BaseURL); err != nil {
			return nil, paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("%s: %w", uv, err))
		}
	}
	var onRate func(paybatch.RateInfo)
	if pacer != nil {
		onRate = pacer.OnRate
	}
	var (
		client pipeline.Provider
		err    error
	)
	switch p {
	case paybatch.SmartRetry:
		if c.Secret == "" {
			return nil, paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("no SmartRetry API key: set %s in the environment", sv))
		}
		client, err = smartretry.NewClient(smartretry.ClientConfig{BaseURL: c.BaseURL, APIKey: c.Secret, OnRate: onRate})
	case paybatch.SmarterPay:
		if c.Secret == "" {
			return nil, paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("no SmarterPay token: set %s in the environment", sv))
		}
		client, err = smarterpay.NewClient(smarterpay.ClientConfig{BaseURL: c.BaseURL, Token: c.Secret, OnRate: onRate})
	default:
		return nil, paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("unknown provider %q", p))
	}
	return client, paybatch.WithKind(paybatch.ErrConfig, err)
}
