package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// Provider is what the engine needs from a provider client.
type Provider interface {
	// Prepare builds the canonical request: the same instruction always
	// yields a byte-identical body.
	Prepare(in paybatch.Instruction) (paybatch.Request, error)
	// Send submits req under the idempotency key. Errors are
	// *paybatch.ProviderError.
	Send(ctx context.Context, req paybatch.Request, key string) (paybatch.Submission, error)
	// Status asks for the current status of an executed operation.
	Status(ctx context.Context, ref paybatch.ProviderRef) (paybatch.ProviderStatus, error)
}

// Looker is implemented by providers that can find an operation by the
// merchant's reference (SmarterPay custom_reference). It resolves rows left
// "sending" longer than the provider's idempotency window. A nil
// Submission means "no such operation".
type Looker interface {
	Lookup(ctx context.Context, in paybatch.Instruction) (*paybatch.Submission, error)
}

// ErrAuth wraps the provider error that stopped a run: the credential was
// refused (401/403/498). The journal is consistent; fix the credential and
// run again.
var ErrAuth = errors.New("provider refused the credential")

// ErrEndpoint wraps the provider error that stopped a run because the answer
// showed the endpoint is not the provider's API (a wrong base URL, an HTML
// page, a redirect, DNS or TLS failure). It is of kind paybatch.ErrConfig.
// Nothing reached the provider, so the rows keep the state they had: a run
// with the right URL sends them.
var ErrEndpoint = paybatch.WithKind(paybatch.ErrConfig, errors.New("wrong provider endpoint"))

// ErrInterrupted is returned when the run's context was cancelled.
var ErrInterrupted = errors.New("interrupted")

// Config tunes a run. The zero value works: documented limits, adaptive
// concurrency, 6 attempts.
type Config struct {
	Provider paybatch.Provider // whose limits apply (default: the instructions' provider)
	// Pacer is the credential's shared pacing; nil builds one from Limits().
	Pacer *Pacer
	// Contracted is the credential's contracted limit of payment operations
	// (SmarterPay: of all requests), used instead of the documented one —
	// typically above it, agreed with the provider. The pacer uses it until
	// the provider's X-RateLimit-Limit announces less (see Pacer.OnRate).
	Contracted paybatch.Limit
	// SubmitRate and StatusRate can only lower the limits (documented or
	// contracted).
	SubmitRate paybatch.Limit
	StatusRate paybatch.Limit
	// Linger is how long a journal commit group may gather state changes
	// (see linger): 0 sizes it from the rate, negative commits each group
	// at once (one commit per intent at a limit: the baseline of
	// BenchmarkContractedLimit).
	Linger time.Duration
	// Concurrency fixes the number of requests in flight; 0 sizes it from
	// rate × observed latency (bounded by MaxConcurrency, default 256).
	Concurrency    int
	MaxConcurrency int
	// MaxAttempts bounds sends of one row on transient errors (default 6).
	MaxAttempts int
	// RetryBudget bounds retries across the run (default: one per row, at
	// least 50). When it runs out, rows that still fail are left "failed"
	// and the run ends resumable.
	RetryBudget int
	// BackoffInitial/BackoffMax shape the full-jitter exponential backoff
	// between attempts (defaults 100 ms and 10 s).
	BackoffInitial, BackoffMax time.Duration
	// RequestTimeout bounds one request (default 30 s).
	RequestTimeout time.Duration
	// Grace is how long in-flight requests may finish after cancellation
	// (default 5 s); their results are journaled.
	Grace time.Duration
	// ReplayWindow is how long after the first send a row left "sending"
	// may be re-sent with the same key and body, relying on the provider's
	// replay (default 23 h, inside the providers' 24 h).
	ReplayWindow time.Duration
	// PollDeadline bounds status polling (default 2 min); rows still pending
	// are reported pending. NoPoll skips polling.
	PollDeadline time.Duration
	NoPoll       bool
	// PollInitial/PollMax shape the per-row polling backoff (defaults 200 ms, 30 s).
	PollInitial, PollMax time.Duration

	// Paced, when set, is called as a phase whose requests are paced at a
	// limit of at most pacedMax a second starts (sending, polling), and the
	// function it returns as the phase ends. A process that runs nothing
	// but the run (the CLI) gives Go one core meanwhile: between paced
	// requests the process is idle, and with a second core each goroutine
	// woken wakes another thread that finds nothing to do — at 300/s
	// 14–19 context switches a row against 8–11 with one (#19).
	Paced func() (done func())

	Now    func() time.Time
	Logger *slog.Logger
	// Progress, when set, is called every ProgressEvery (default 1 s) and
	// once at the end of each phase.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

func (c *Config) defaults(p paybatch.Provider, rows int) {
	if c.Provider == "" {
		c.Provider = p
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 256
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if c.RetryBudget <= 0 {
		c.RetryBudget = max(50, rows)
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = 100 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 5 * time.Second
	}
	if c.ReplayWindow <= 0 {
		c.ReplayWindow = 23 * time.Hour
	}
	if c.PollDeadline <= 0 {
		c.PollDeadline = 2 * time.Minute
	}
	if c.PollInitial <= 0 {
		c.PollInitial = 200 * time.Millisecond
	}
	if c.PollMax <= 0 {
		c.PollMax = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
}

// Limits returns the effective limits: the provider's documented ones,
// with the payment limit replaced by Contracted, lowered by
// SubmitRate/StatusRate.
func (c Config) Limits() paybatch.Limits {
	l := Contract(DefaultLimits(c.Provider), c.Contracted)
	l.Submit = l.Submit.Min(c.SubmitRate)
	l.Status = l.Status.Min(c.StatusRate)
	return l
}

// Contract applies a contracted limit to documented limits: it replaces the
// payment-operation limit (where the provider has none of its own, as
// SmarterPay, the one limit of every request), and the limit of all
// requests is raised to at least it. A zero contracted limit changes
// nothing.
func Contract(doc paybatch.Limits, contracted paybatch.Limit) paybatch.Limits {
	if contracted.IsZero() {
		return doc
	}
	if doc.Submit.IsZero() {
		doc.Overall = contracted
		return doc
	}
	doc.Submit = contracted
	if !doc.Overall.IsZero() && doc.Overall.PerSecond() < contracted.PerSecond() {
		doc.Overall = contracted
	}
	return doc
}

// Progress is a snapshot of a running phase.
type Progress struct {
	Phase       string // "submit" or "poll"
	Total       int    // rows in the phase
	Done        int    // rows that need nothing more in this phase
	Requests    int64  // requests sent (all attempts)
	Retries     int64
	RateLimited int64 // 429s seen
	InFlight    int   // concurrency window size
	Elapsed     time.Duration
}

// Result summarises a run.
type Result struct {
	Rows        int // instructions in the run (after duplicates)
	New         int // journaled for the first time by this run
	AlreadyDone int // finished before this run started (re-run no-op)
	Duplicates  int // same key and content seen twice in the input
	// Conflicts are the first 1,000 conflicting input rows, in input order;
	// ConflictCount counts them all (the journal's Conflicts holds every
	// one).
	Conflicts     []journal.Conflict
	ConflictCount int
	States        map[paybatch.State]int   // by state, for the run's rows, at the end
	Outcomes      map[paybatch.Outcome]int // by outcome, for the run's rows, at the end
	Totals        map[paybatch.State]paybatch.Totals
	Requests      int64 // submit and poll requests sent
	Retries       int64
	RateLimited   int64
	Unresolved    int // rows sent > ReplayWindow ago that could not be resolved: check by hand
	Elapsed       time.Duration
	// Sent counts the rows whose request left at least once in this run.
	Sent int
	// Interrupted is set when the caller's context stopped the run (at
	// any point: journaling the input, sending, polling): the rows are not
	// all where the run would have taken them, so the verdict is resumable
	// whatever the tallies say.
	Interrupted bool
	// Untallied is set when a journal write failed (a full disk): the
	// run's last states could not be folded into the journal, so States,
	// Outcomes and Totals are empty rather than stale, and Sent says what
	// left. The next run resumes from the journal; rows sent but not
	// recorded are re-sent under the same key and body, which the provider
	// answers from its replay.
	Untallied bool
}

// Verdict is what the run's rows amount to: paybatch.ErrResumable when
// some are unfinished (failed, pending, sending, unresolved),
// paybatch.ErrExceptions when some need attention (declines, rejects,
// conflicts, failed or cancelled outcomes), nil when every row is fine.
func (r Result) Verdict() error {
	if r.Interrupted || r.States[paybatch.StateFailed] > 0 || r.States[paybatch.StatePending] > 0 ||
		r.States[paybatch.StateSending] > 0 || r.Unresolved > 0 {
		return paybatch.ErrResumable
	}
	if r.ConflictCount > 0 || len(r.Conflicts) > 0 || r.States[paybatch.StateDeclined] > 0 || r.States[paybatch.StateRejected] > 0 ||
		r.States[paybatch.StateConflict] > 0 || r.Outcomes[paybatch.OutcomeFailed] > 0 || r.Outcomes[paybatch.OutcomeCancelled] > 0 {
		return paybatch.ErrExceptions
	}
	return nil
}

// run is the shared machinery of one Submit or Poll call.
type run struct {
	j      journal.Journal
	p      Provider
	cfg    Config
	th     *Pacer
	win    *window
	log    *slog.Logger
	reqCtx context.Context // outlives the run's ctx by Grace
	linger time.Duration   // how long a commit group may gather (see linger)

	budget      atomic.Int64
	requests    atomic.Int64
	retries     atomic.Int64
	rateLimited atomic.Int64
	done        atomic.Int64
	unresolved  atomic.Int64
	sent        atomic.Int64
	journalErr  atomic.Bool // a journal write failed: the table is behind

	// ctx is the run's context; abort cancels it with the fatal error that
	// stops the run (a refused credential, a wrong endpoint, a journal write
	// that failed). The first cause is kept: later ones, from rows that
	// fail because of the first, are dropped.
	ctx   context.Context
	abort context.CancelCauseFunc
}

func newRun(ctx context.Context, j journal.Journal, p Provider, cfg Config) (*run, context.Context, func()) {
	th := cfg.Pacer
	if th == nil {
		th = NewPacer(cfg.Limits())
	}
	lim := th.Limits()
	r := &run{j: j, p: p, cfg: cfg, th: th, log: cfg.Logger}
	rate := lim.Submit.Min(lim.Overall).PerSecond()
	r.win = newWindow(rate, cfg.Concurrency, cfg.MaxConcurrency)
	switch {
	case cfg.Linger == 0:
		r.linger = linger(rate)
	case cfg.Linger > 0:
		r.linger = cfg.Linger
	}
	j.SetLinger(r.linger)
	r.budget.Store(int64(cfg.RetryBudget))
	// Requests get a context that survives the run's cancellation by Grace,
	// so in-flight requests can finish and be journaled.
	reqCtx, reqCancel := context.WithCancel(context.WithoutCancel(ctx))
	runCtx, abort := context.WithCancelCause(ctx)
	r.ctx, r.abort = runCtx, abort
	r.reqCtx = reqCtx
	stop := context.AfterFunc(runCtx, func() {
		r.win.wake()
		time.AfterFunc(cfg.Grace, reqCancel)
	})
	return r, runCtx, func() { stop(); abort(nil); reqCancel(); j.SetLinger(0) }
}

// linger is how long the journal lets a commit group gather at a paced
// rate: about 64 departures (≈ 200 ms at 300/s), at most 200 ms; none
// when unthrottled, where the changes of many workers meet in every commit
// anyway. At a limit the rows arrive one at a time and each would be a
// commit of its own: a DuckDB commit costs 1.5–3 ms of CPU however small
// (an fsync besides), most of a row's CPU. The intent still commits before
// its request leaves; rows committed earlier keep the pacer busy meanwhile
// (the window covers at least half a second of sends, 150 rows at 300/s,
// where a 200 ms group holds 60 and the requests in flight 15). Measured at
// 300/s with 50 ± 10 ms latency (session 15, #19), the two runs at the same
// time against two sandboxes so that the host's drift cancels: 200 ms took
// 0.019 ms less CPU a row than 100 ms (4 pairs), with the same rate
// (97.5–97.7 % of the limit) and no 429; 300 ms 0.016 less again, not
// taken: its group would hold 90 of the window's 150. (Sessions 4 and 7
// found no gain beyond noise for 200 ms and saw 429s on a loaded machine;
// the pacer has since logged each departure when its request was written.)
func linger(ratePerSec float64) time.Duration {
	if math.IsInf(ratePerSec, 1) || ratePerSec <= 0 {
		return 0
	}
	return min(time.Duration(64/ratePerSec*float64(time.Second)), 200*time.Millisecond)
}

// pacedMax is the highest rate (a second) at which a phase counts as paced
// (Config.Paced): one core runs the engine's side of a row in ≈ 0.3 ms.
const pacedMax = 1000

// paced calls cfg.Paced when a phase's requests are paced at ratePerSec;
// it returns what ends that.
func (r *run) paced(ratePerSec float64) (done func()) {
	if r.cfg.Paced == nil || math.IsInf(ratePerSec, 1) || ratePerSec <= 0 || ratePerSec > pacedMax {
		return func() {}
	}
	return r.cfg.Paced()
}

// failJournal stops the run on a failed journal write.
func (r *run) failJournal(err error) {
	r.journalErr.Store(true)
	r.fail(fmt.Errorf("journal: %w", err))
}

// fail stops the run: every worker sees its context cancelled, and the run
// returns err (see run.err).
func (r *run) fail(err error) { r.abort(err) }

func (r *run) progress(phase string, total int, start time.Time) Progress {
	return Progress{Phase: phase, Total: total, Done: int(r.done.Load()), Requests: r.requests.Load(),
		Retries: r.retries.Load(), RateLimited: r.rateLimited.Load(), InFlight: r.win.current(),
		Elapsed: r.cfg.Now().Sub(start)}
}

// report calls cfg.Progress every ProgressEvery until stop is closed, and
// publishes the progress beside the journal (for `status` in another
// process) at the start and every second.
func (r *run) report(ctx context.Context, phase string, total int, start time.Time) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var tick <-chan time.Time
		if r.cfg.Progress != nil {
			t := time.NewTicker(r.cfg.ProgressEvery)
			defer t.Stop()
			tick = t.C
		}
		pub := time.NewTicker(time.Second)
		defer pub.Stop()
		r.publish(ctx, r.progress(phase, total, start))
		for {
			select {
			case <-quit:
				p := r.progress(phase, total, start)
				if r.cfg.Progress != nil {
					r.cfg.Progress(p)
				}
				r.publish(ctx, p)
				return
			case <-tick:
				r.cfg.Progress(r.progress(phase, total, start))
			case <-pub.C:
				r.publish(ctx, r.progress(phase, total, start))
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// publish records p beside the journal; failing to is logged, never fatal
// (it is for watchers, not for the run).
func (r *run) publish(ctx context.Context, p Progress) {
	err := r.j.Publish(context.WithoutCancel(ctx), journal.Progress{Phase: p.Phase, Total: p.Total, Done: p.Done, Requests: p.Requests})
	if err != nil {
		r.log.Warn("progress snapshot not written", "err", err)
	}
}

// fullJitter returns a random wait in [0, d).
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// backoff is the schedule of retries and poll rounds: initial, then double
// each time up to max. Each wait is drawn below it by fullJitter, so workers
// that failed together do not retry together. (Four lines replace a
// dependency whose one constructor was used with its own jitter switched off.)
type backoff struct{ next, max time.Duration }

func newBackoff(initial, maxInterval time.Duration) *backoff {
	return &backoff{next: initial, max: maxInterval}
}

// wait returns the next full-jitter wait and doubles the schedule.
func (b *backoff) wait() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	return fullJitter(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Submit journals every instruction from src as pending, reports rows whose
// content differs from what the journal holds under the same key as
// conflicts (nothing is sent for them), then sends every unfinished row of
// the run exactly once and, unless cfg.NoPoll, polls accepted rows for a
// final status. Re-running a finished input is a no-op. The returned error
// is non-nil when the run was cut short (ErrInterrupted, ErrAuth, a journal
// failure); Result is valid either way.
//
// Memory does not grow with the input: src is staged into the journal file
// as it is read, compared with the journal there, and each phase reads the
// rows it works on a page at a time (see journal.RunSet).
func Submit(ctx context.Context, j journal.Journal, p Provider, src iter.Seq2[paybatch.Instruction, error], cfg Config) (Result, error) {
	res, err := submit(ctx, j, p, src, cfg)
	return interrupted(ctx, res, err)
}

// interrupted marks a result whose run the caller's context stopped, and
// says so in its error (ErrInterrupted) whatever step noticed it.
func interrupted(ctx context.Context, res Result, err error) (Result, error) {
	if err == nil || ctx.Err() == nil {
		return res, err
	}
	res.Interrupted = true
	if !errors.Is(err, ErrInterrupted) {
		err = fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	return res, err
}

func submit(ctx context.Context, j journal.Journal, p Provider, src iter.Seq2[paybatch.Instruction, error], cfg Config) (Result, error) {
	start := time.Now()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	now := cfg.Now()
	var provider paybatch.Provider
	in, err := j.Ingest(ctx, rowsOf(ctx, p, src, now, &provider), now)
	res := Result{Rows: in.Rows, New: in.New, Duplicates: in.Duplicates, Conflicts: in.Conflicts, ConflictCount: in.ConflictCount}
	if err != nil {
		return res, err // cancelled while journaling (nothing was sent): Submit calls it an interrupt
	}
	cfg.defaults(provider, res.Rows)
	toSend, err := j.Count(ctx, sendFilter)
	if err != nil {
		return res, err
	}
	toPoll, err := j.Count(ctx, journal.Filter{States: []paybatch.State{paybatch.StateAccepted}})
	if err != nil {
		return res, err
	}
	res.AlreadyDone = res.Rows - toSend - toPoll

	r, runCtx, cleanup := newRun(ctx, j, p, cfg)
	defer cleanup()
	r.log.Info("submit", "rows", res.Rows, "to_send", toSend, "to_poll", toPoll,
		"already_done", res.AlreadyDone, "conflicts", res.ConflictCount, "provider", cfg.Provider,
		"submit_rate", cfg.Limits().Submit.Min(cfg.Limits().Overall))
	r.sendAll(runCtx, toSend)
	if !cfg.NoPoll && runCtx.Err() == nil {
		r.pollAll(runCtx)
	}
	return r.result(ctx, res, start)
}

// sendFilter selects the rows a Submit still has to send.
var sendFilter = journal.Filter{States: []paybatch.State{paybatch.StatePending, paybatch.StateSending, paybatch.StateFailed}}

// Poll polls every accepted row in the journal (for cfg.Provider, or all
// providers when empty) until it has a final status or PollDeadline passes.
func Poll(ctx context.Context, j journal.Journal, p Provider, cfg Config) (Result, error) {
	start := time.Now()
	n, err := j.SelectAccepted(ctx, cfg.Provider)
	if err != nil {
		return interrupted(ctx, Result{}, err)
	}
	cfg.defaults(cfg.Provider, n)
	r, runCtx, cleanup := newRun(ctx, j, p, cfg)
	defer cleanup()
	r.pollAll(runCtx)
	res, err := r.result(ctx, Result{Rows: n}, start)
	return interrupted(ctx, res, err)
}

// result folds the run's state changes into the journal table, tallies
// the run's rows from it and returns why the run stopped early, if it did.
func (r *run) result(ctx context.Context, res Result, start time.Time) (Result, error) {
	res.Requests, res.Retries, res.RateLimited = r.requests.Load(), r.retries.Load(), r.rateLimited.Load()
	res.Unresolved = int(r.unresolved.Load())
	res.Sent = int(r.sent.Load())
	err := r.finish(ctx)
	if r.journalErr.Load() {
		res.Untallied = true
	} else {
		t, terr := r.j.Tally(ctx)
		if terr != nil && err == nil {
			err = terr
		}
		res.States, res.Outcomes, res.Totals = t.States, t.Outcomes, t.Totals
	}
	res.Elapsed = time.Since(start)
	return res, err
}

// finish folds the run's state changes into the journal table and returns
// why the run stopped early, if it did.
func (r *run) finish(ctx context.Context) error {
	if err := r.j.Flush(context.WithoutCancel(ctx)); err != nil {
		r.failJournal(err)
	}
	return r.err(ctx)
}

// err says why the run stopped early, if it did: the fatal error it failed
// with, or ErrInterrupted when the caller's ctx was cancelled first.
func (r *run) err(ctx context.Context) error {
	cause := context.Cause(r.ctx)
	switch {
	case cause == nil:
		return nil
	case ctx.Err() != nil && cause == context.Cause(ctx):
		return fmt.Errorf("%w: %w", ErrInterrupted, cause)
	}
	return cause
}

// sendAll sends the snapshot's rows through the pool, a page at a time.
func (r *run) sendAll(ctx context.Context, total int) {
	if total == 0 {
		return
	}
	start := r.cfg.Now()
	r.done.Store(0)
	stop := r.report(ctx, "submit", total, start)
	defer stop()
	defer r.paced(r.win.rate)()
	p := pool.New().WithMaxGoroutines(r.cfg.MaxConcurrency)
pages:
	for page, err := range r.j.Pages(ctx, sendFilter) {
		if err != nil {
			r.fail(err)
			break
		}
		for _, row := range page {
			if ctx.Err() != nil {
				break pages
			}
			p.Go(func() {
				r.sendRow(ctx, row)
				r.done.Add(1)
			})
		}
		if p = r.checkpoint(p); p == nil {
			return
		}
	}
	p.Wait()
}

// checkpointer is a journal whose run must pause its writes now and then
// for a checkpoint (DuckDB holds every change not yet checkpointed in
// memory: without them a large run grows until its memory limit).
type checkpointer interface {
	CheckpointDue() bool
	Checkpoint(ctx context.Context) error
}

// checkpoint runs between two pages of a phase: when the journal wants a
// checkpoint, it waits for the workers of the pages handed out so far
// (their intents and answers are journaled), lets the journal checkpoint,
// and returns a new pool for the next pages; nil when the checkpoint
// failed (the run is stopped).
func (r *run) checkpoint(p *pool.Pool) *pool.Pool {
	cp, ok := r.j.(checkpointer)
	if !ok || !cp.CheckpointDue() {
		return p
	}
	p.Wait()
	if err := cp.Checkpoint(r.ctx); err != nil {
		r.failJournal(err)
		return nil
	}
	return pool.New().WithMaxGoroutines(r.cfg.MaxConcurrency)
}

// sendRow drives one row to accepted, declined, rejected, conflict or
// failed — or leaves it "sending" when the run stops mid-way.
func (r *run) sendRow(ctx context.Context, row *journal.Row) {
	if !row.SentAt.IsZero() && r.cfg.Now().Sub(row.SentAt) > r.cfg.ReplayWindow {
		if !r.resolveStale(ctx, row) {
			return
		}
	}
	bo := newBackoff(r.cfg.BackoffInitial, r.cfg.BackoffMax)
	req := paybatch.Request{Method: row.Method, Path: row.Path, Body: row.Body}
	transient, limited, left := 0, 0, false
	for {
		if ctx.Err() != nil {
			return
		}
		if err := r.win.acquire(ctx); err != nil {
			return
		}
		if err := r.th.gate.wait(ctx); err != nil {
			r.win.release()
			return
		}
		t0 := time.Now()
		// Intent first: the row is "sending", with its attempt counted,
		// durably, before the request can leave.
		prevState, prevSentAt, prevAttempts := row.State, row.SentAt, row.Attempts
		now := r.cfg.Now()
		before := *row // what the row was, should the request never leave
		row.State = paybatch.StateSending
		row.Attempts++
		if row.SentAt.IsZero() {
			row.SentAt = now
		}
		row.UpdatedAt = now
		if err := r.j.Save(row); err != nil {
			r.win.release()
			if errors.Is(err, journal.ErrClaimed) {
				// Another process sharing the journal claimed the row
				// first and sends it: not this run's to send.
				*row = before
				r.log.Info("row claimed by another process", "key", row.Key)
				return
			}
			r.failJournal(err)
			return
		}
		if d := time.Since(t0); d > r.linger+100*time.Millisecond {
			r.log.Warn("slow journal commit", "took", d, "linger", r.linger)
		}
		// The token is taken last, right before the request leaves, so the
		// spacing the limiter grants is the spacing on the wire (a token
		// taken before the journal write would let commit jitter bunch
		// requests into one provider window). The wait re-checks the 429
		// gate: nothing leaves during Retry-After.
		tw := time.Now()
		dep, err := r.th.wait(ctx, r.th.submit)
		if err != nil {
			r.win.release()
			// Interrupted before the request left: the row goes back to
			// what it was, so it is not reported as "sending" (a crash
			// before this is recorded leaves it "sending": harmless, the
			// resend with the same key is answered by replay or executes
			// once).
			before.UpdatedAt = r.cfg.Now()
			*row = before
			r.persist(row)
			return
		}
		waited := time.Since(tw)
		r.requests.Add(1)
		if !left {
			left = true
			r.sent.Add(1)
		}
		sctx, cancel := context.WithTimeout(r.th.trace(r.reqCtx, &dep), r.cfg.RequestTimeout)
		tx := time.Now()
		sub, err := r.p.Send(sctx, req, row.Key)
		cancel()
		if !dep.Observed() {
			r.th.Observe(time.Since(tx)) // the exchange: its spread is the pacer's jitter allowance
		}
		r.win.observe(time.Since(t0) - waited) // journal write + exchange

		r.win.release()
		row.UpdatedAt = r.cfg.Now()
		if err == nil {
			r.applySubmission(row, sub)
			r.persist(row)
			return
		}
		var pe *paybatch.ProviderError
		if !errors.As(err, &pe) {
			pe = &paybatch.ProviderError{Class: paybatch.ClassTransient, Err: err}
		}
		row.HTTPStatus = pe.HTTPStatus
		row.ReasonCode = pe.Problem.ReasonCode
		row.Problem = problemText(pe)
		switch pe.Class {
		case paybatch.ClassRateLimited:
			r.rateLimited.Add(1)
			r.pause(pe.RetryAfter)
			if limited++; limited < maxRateLimited {
				continue // not an attempt that failed: the gate paces it
			}
			row.State = paybatch.StateFailed
			row.Problem = fmt.Sprintf("still rate limited after %d waits: %s", limited, row.Problem)
			r.persist(row)
			return
		case paybatch.ClassAuth:
			r.persist(row)
			r.fail(fmt.Errorf("%w: %w (the journal is consistent; fix the credential and run again)", ErrAuth, pe))
			return
		case paybatch.ClassConfig:
			// The request never reached the provider: the row is as it was
			// before this attempt, never a final outcome.
			row.State, row.SentAt, row.Attempts = prevState, prevSentAt, prevAttempts
			r.persist(row)
			r.fail(fmt.Errorf("%w: %w", ErrEndpoint, pe))
			return
		case paybatch.ClassRejected:
			row.State = paybatch.StateRejected
			r.persist(row)
			return
		case paybatch.ClassConflict:
			row.State = paybatch.StateConflict
			r.persist(row)
			return
		}
		// Transient: same key, same body, after a full-jitter backoff.
		if ctx.Err() != nil {
			r.persist(row) // stays "sending": the request may have executed
			return
		}
		transient++
		if transient >= r.cfg.MaxAttempts || r.budget.Add(-1) < 0 {
			row.State = paybatch.StateFailed
			row.Problem = fmt.Sprintf("gave up after %d attempts: %s", transient, row.Problem)
			r.persist(row)
			return
		}
		r.retries.Add(1)
		if pe.RetryAfter > 0 {
			r.pause(pe.RetryAfter)
		}
		if err := sleep(ctx, bo.wait()); err != nil {
			r.persist(row)
			return
		}
	}
}

// maxRateLimited bounds the 429s one row may meet before it is left
// "failed" (resumable): a credential throttled that long needs a person.
const maxRateLimited = 100

// pause closes the shared gate for d (1 s when the provider gave no
// Retry-After).
func (r *run) pause(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	r.th.Pause(d)
	r.log.Warn("rate limited: pausing every worker", "retry_after", d)
}

// persist records what a request returned for row (queued for the next
// group commit: see saveLater); a journal failure stops the run.
func (r *run) persist(row *journal.Row) {
	if err := r.j.SaveLater(row); err != nil {
		r.failJournal(err)
	}
}

func problemText(pe *paybatch.ProviderError) string {
	// ProviderError never carries credentials (provider.go contract).
	return pe.Error()
}

func (r *run) applySubmission(row *journal.Row, sub paybatch.Submission) {
	row.HTTPStatus = sub.HTTPStatus
	row.ProviderID = sub.ProviderID
	row.OrderID = sub.OrderID
	row.Replayed = sub.Replayed
	row.Problem, row.ReasonCode = "", ""
	if sub.Amount != nil {
		v := sub.Amount.Minor
		row.ProviderAmount = &v
	}
	if !sub.Date.IsZero() {
		row.ProviderDate = sub.Date
	}
	if !sub.Accepted {
		// A decline is final: the operation will not happen.
		row.State = paybatch.StateDeclined
		if sub.Status != nil {
			r.applyStatus(row, *sub.Status)
			row.State = paybatch.StateDeclined
		}
		if !row.Outcome.Final() {
			row.Outcome = paybatch.OutcomeFailed
		}
		return
	}
	row.State = paybatch.StateAccepted
	if sub.Status != nil {
		r.applyStatus(row, *sub.Status)
	}
}

func (r *run) applyStatus(row *journal.Row, st paybatch.ProviderStatus) {
	row.ProviderStatus = st.Raw
	row.Outcome = st.Outcome
	if st.ReasonCode != "" {
		row.ReasonCode = st.ReasonCode
	}
	if st.Amount != nil {
		v := st.Amount.Minor
		row.ProviderAmount = &v
	}
	if !st.Date.IsZero() {
		row.ProviderDate = st.Date
	}
	if (st.Outcome == paybatch.OutcomeFailed || st.Outcome == paybatch.OutcomeCancelled) && st.Detail != "" {
		row.Problem = st.Detail // the reason's description, beside its code
	}
	if st.Outcome.Final() && row.State == paybatch.StateAccepted {
		row.State = paybatch.StateFinal
		row.FinalAt = r.cfg.Now()
	}
}

// resolveStale handles a row first sent longer ago than the provider keeps
// idempotent replays: re-sending could execute it twice, so it is looked up
// instead. It reports whether the row should now be sent.
func (r *run) resolveStale(ctx context.Context, row *journal.Row) bool {
	lk, ok := r.p.(Looker)
	if !ok {
		row.Problem = fmt.Sprintf("first sent %s, beyond the provider's idempotency window, and %s has no search endpoint: check it by hand (merchant_transaction_id %s) before resubmitting",
			row.SentAt.UTC().Format(time.RFC3339), row.Provider, row.MerchantTxID)
		row.UpdatedAt = r.cfg.Now()
		r.unresolved.Add(1)
		r.persist(row)
		return false
	}
	dep, err := r.th.wait(ctx, r.th.status)
	if err != nil {
		return false
	}
	r.requests.Add(1)
	lctx, cancel := context.WithTimeout(r.th.trace(r.reqCtx, &dep), r.cfg.RequestTimeout)
	sub, err := lk.Lookup(lctx, row.Instruction())
	cancel()
	row.UpdatedAt = r.cfg.Now()
	if err != nil {
		row.Problem = "lookup of a row sent beyond the idempotency window failed: " + err.Error()
		r.unresolved.Add(1)
		r.persist(row)
		var pe *paybatch.ProviderError
		if errors.As(err, &pe) && pe.Class == paybatch.ClassAuth {
			r.fail(fmt.Errorf("%w: %w", ErrAuth, pe))
		}
		if errors.As(err, &pe) && pe.Class == paybatch.ClassConfig {
			r.fail(fmt.Errorf("%w: %w", ErrEndpoint, pe))
		}
		return false
	}
	if sub == nil {
		// The provider has no such operation: it never executed, so sending
		// it now is the first execution.
		row.SentAt = time.Time{}
		row.Problem = "not found by lookup after the idempotency window; sent again"
		return true
	}
	r.applySubmission(row, *sub)
	row.Replayed = true
	r.persist(row)
	return false
}

// pollAll polls the run's accepted rows in rounds until each has a final
// status or the deadline passes; the wait between rounds grows with full
// jitter. Each round folds the previous round's changes into the journal
// and reads the rows still accepted a page at a time. A row whose status
// query was refused during this phase (PollRefusedAt) is not asked again.
func (r *run) pollAll(ctx context.Context) {
	f := journal.Filter{States: []paybatch.State{paybatch.StateAccepted}, Pollable: true, PollStart: r.cfg.Now().UTC()}
	round := func() (int, bool) {
		if err := r.j.Flush(context.WithoutCancel(ctx)); err != nil {
			r.failJournal(err)
			return 0, false
		}
		n, err := r.j.Count(ctx, f)
		if err != nil {
			r.fail(err)
			return 0, false
		}
		return n, true
	}
	pending, ok := round()
	if !ok || pending == 0 {
		return
	}
	start := r.cfg.Now()
	r.done.Store(0)
	stop := r.report(ctx, "poll", pending, start)
	defer stop()
	lim := r.th.Limits()
	defer r.paced(lim.Status.Min(lim.Overall).PerSecond())()
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PollDeadline)
	defer cancel()
	bo := newBackoff(r.cfg.PollInitial, r.cfg.PollMax)
	for pending > 0 && pctx.Err() == nil {
		var finished atomic.Int64
		p := pool.New().WithMaxGoroutines(r.cfg.MaxConcurrency)
	pages:
		for page, err := range r.j.Pages(ctx, f) {
			if err != nil {
				r.fail(err)
				break
			}
			for _, row := range page {
				if pctx.Err() != nil {
					break pages
				}
				p.Go(func() {
					if r.pollRow(pctx, row) {
						finished.Add(1)
						r.done.Add(1)
					}
				})
			}
			if p = r.checkpoint(p); p == nil {
				return
			}
		}
		p.Wait()
		if pending -= int(finished.Load()); pending == 0 || pctx.Err() != nil {
			break
		}
		if sleep(pctx, bo.wait()) != nil {
			break
		}
		if pending, ok = round(); !ok {
			return
		}
	}
	if pending > 0 {
		r.log.Info("poll deadline: rows still pending", "rows", pending)
	}
}

// pollRow asks for one row's status once and journals what it learns. It
// reports whether the row needs no more polling.
func (r *run) pollRow(ctx context.Context, row *journal.Row) bool {
	if err := r.win.acquire(ctx); err != nil {
		return false
	}
	dep, err := r.th.wait(ctx, r.th.status)
	if err != nil {
		r.win.release()
		return false
	}
	r.requests.Add(1)
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(r.th.trace(ctx, &dep), r.cfg.RequestTimeout)
	st, err := r.p.Status(sctx, paybatch.ProviderRef{Kind: row.Kind, Terminal: row.Terminal, ID: row.ProviderID})
	cancel()
	if !dep.Observed() {
		r.th.Observe(time.Since(t0))
	}
	r.win.observe(time.Since(t0))
	r.win.release()
	now := r.cfg.Now()
	if err != nil {
		var pe *paybatch.ProviderError
		if errors.As(err, &pe) {
			switch pe.Class {
			case paybatch.ClassRateLimited:
				r.rateLimited.Add(1)
				r.pause(pe.RetryAfter)
			case paybatch.ClassAuth:
				r.fail(fmt.Errorf("%w: %w", ErrAuth, pe))
			case paybatch.ClassConfig:
				r.fail(fmt.Errorf("%w: %w", ErrEndpoint, pe))
			case paybatch.ClassRejected, paybatch.ClassConflict:
				// The provider does not know the id it gave: record and stop
				// polling this row; it stays accepted for a human to check.
				row.Problem = "status: " + pe.Error()
				row.UpdatedAt = now
				row.PollRefusedAt = now
				r.persist(row)
				return true
			}
		}
		return false
	}
	row.Polls++
	row.PolledAt = now
	row.UpdatedAt = now
	r.applyStatus(row, st)
	// Every poll is recorded (an appended event): the next round reads the
	// row, with its poll count, back from the journal.
	r.persist(row)
	return row.State == paybatch.StateFinal
}
