package web

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/readers"
)

// sender sends approved batches, one at a time, through job.SubmitJournal
// on the server's one journal: the job code `paybatch submit` and `run`
// use, with the same readers, keys and journal, so a batch sent here and a
// file sent from the CLI can never send one row twice. One goroutine owns
// the work; Close cancels it and waits.
type sender struct {
	s *Server

	mu       sync.Mutex
	queue    []int64
	queued   map[int64]bool
	wake     chan struct{}
	live     map[int64]pipeline.Progress
	cancel   context.CancelFunc
	done     chan struct{}
	sendings int // batches sent so far (tests count submissions with it)
}

func newSender(s *Server) *sender {
	return &sender{s: s, queued: map[int64]bool{}, wake: make(chan struct{}, 1),
		live: map[int64]pipeline.Progress{}}
}

func (q *sender) enqueue(id int64) {
	q.mu.Lock()
	if !q.queued[id] {
		q.queued[id] = true
		q.queue = append(q.queue, id)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// start resumes every batch left approved or sending (a restart after a
// crash or a stop) and runs the queue.
func (q *sender) start(ctx context.Context) error {
	if q.s.cfg.Journal == nil {
		return errors.New("web: no journal to send through")
	}
	for _, st := range []State{StateSending, StateApproved} {
		bs, _, err := q.s.store.Batches(ctx, st, 0, 1<<30)
		if err != nil {
			return err
		}
		for i := len(bs) - 1; i >= 0; i-- {
			q.enqueue(bs[i].ID)
		}
	}
	ctx, q.cancel = context.WithCancel(ctx)
	q.done = make(chan struct{})
	go q.loop(ctx)
	return nil
}

func (q *sender) stop() {
	if q.cancel == nil {
		return
	}
	q.cancel()
	<-q.done
}

func (q *sender) loop(ctx context.Context) {
	defer close(q.done)
	for {
		q.mu.Lock()
		var id int64
		if len(q.queue) > 0 {
			id, q.queue = q.queue[0], q.queue[1:]
		}
		q.mu.Unlock()
		if id == 0 {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		q.run(ctx, id)
		q.mu.Lock()
		delete(q.queued, id)
		q.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

const system = "paybatch"

func (q *sender) run(ctx context.Context, id int64) {
	s := q.s
	b, err := s.store.Batch(ctx, id)
	if err != nil {
		s.log.Error("send: batch", "batch", id, "err", err)
		return
	}
	action := "sending started"
	if b.State == StateSending {
		action = "sending resumed"
	}
	b, err = s.store.Transition(ctx, id, []State{StateApproved, StateSending}, StateSending, "",
		AuditEvent{User: system, Action: action, At: s.cfg.Now()})
	if err != nil {
		s.log.Error("send: claim", "batch", id, "err", err)
		return
	}
	q.mu.Lock()
	q.sendings++
	q.live[id] = pipeline.Progress{Phase: "starting", Total: b.Valid}
	q.mu.Unlock()

	res, err := q.sendBatch(ctx, b)
	if ctx.Err() != nil {
		// Shutting down: the batch stays "sending" and resumes at the
		// next start; the journal knows what left.
		_ = s.store.Audit(context.WithoutCancel(ctx), AuditEvent{BatchID: id, User: system, Action: "sending interrupted",
			Detail: "the server stopped; sending resumes when it starts again (rows already sent are not sent again)", At: s.cfg.Now()})
		return
	}
	to, msg, detail := outcomeState(res, err)
	ctx = context.WithoutCancel(ctx)
	// The report is written before the batch is shown finished, so the
	// page that reloads at the end offers it.
	if (to == StateDone || to == StateExceptions) && s.cfg.Ledger != "" {
		if _, err := s.reconcileBatch(ctx, b, s.cfg.Ledger, filepath.Base(s.cfg.Ledger), system); err != nil {
			s.log.Error("report", "batch", id, "err", err)
			_ = s.store.Audit(ctx, AuditEvent{BatchID: id, User: system, Action: "report failed", Detail: paybatch.MaskCardNumbers(err.Error()), At: s.cfg.Now()})
		} else {
			_ = s.store.Audit(ctx, AuditEvent{BatchID: id, User: system, Action: "reconciled and report written",
				Detail: "against ledger " + filepath.Base(s.cfg.Ledger), At: s.cfg.Now()})
		}
	}
	fb, terr := s.store.Transition(ctx, id, []State{StateSending}, to, msg,
		AuditEvent{User: system, Action: "sending finished: " + to.Label(), Detail: detail, At: s.cfg.Now()})
	if terr != nil {
		s.log.Error("send: finish", "batch", id, "err", terr)
		return
	}
	s.warmOutcomes(fb) // its outcome pages are counted now, not at the first view
}

// outcomeState is the batch state a finished send leads to, by the kind of
// the job's error, with the note the pages show.
func outcomeState(res pipeline.Result, err error) (State, string, string) {
	counts := fmt.Sprintf("%d rows: %s", res.Rows, stateCounts(res))
	switch paybatch.KindOf(err) {
	case 0:
		if n := res.States[paybatch.StateAccepted]; n > 0 {
			return StateExceptions, fmt.Sprintf("%d rows were accepted but had no final status at the poll deadline; `paybatch status` polls them again.", n), counts
		}
		return StateDone, "", counts
	case paybatch.ErrExceptions:
		return StateExceptions, "Some rows were declined, refused or failed, or were rejected by validation and not sent: filter the outcomes below.", counts
	case paybatch.ErrInput, paybatch.ErrUsage:
		return StateStopped, "Nothing was sent: " + paybatch.MaskCardNumbers(err.Error()), counts
	}
	return StateStopped, "Sending stopped: " + paybatch.MaskCardNumbers(err.Error()) + ". Rows already sent are never sent again; it resumes when the server restarts.", counts
}

func stateCounts(res pipeline.Result) string {
	var parts []string
	for _, st := range []paybatch.State{paybatch.StateFinal, paybatch.StateAccepted, paybatch.StateDeclined, paybatch.StateRejected,
		paybatch.StateConflict, paybatch.StateFailed, paybatch.StateSending, paybatch.StatePending} {
		if n := res.States[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

// sendBatch sends the approved file through the CLI's job code. The file
// must still be the one approved (same SHA-256); job.SubmitJournal
// validates it again with the same readers, records the rejects, sends the
// valid rows only when the batch was approved that way, and polls.
func (q *sender) sendBatch(ctx context.Context, b Batch) (pipeline.Result, error) {
	s := q.s
	if err := b.loadMapping(); err != nil {
		return pipeline.Result{}, paybatch.WithKind(paybatch.ErrInput, err)
	}
	sum, err := readers.FileSHA256(ctx, b.Path)
	if err != nil {
		return pipeline.Result{}, paybatch.WithKind(paybatch.ErrInput, s.fileErr(&b, err))
	}
	if sum != b.SHA256 {
		return pipeline.Result{}, paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("the stored file changed since it was approved (sha256 %s, approved %s)", sum, b.SHA256))
	}
	deps := job.Deps{Now: s.cfg.Now, Log: s.log, Version: "serve",
		Progress: func(cfg *pipeline.Config, total int) func() {
			cfg.ProgressEvery = 250 * time.Millisecond
			cfg.Progress = func(p pipeline.Progress) {
				q.mu.Lock()
				q.live[b.ID] = p
				q.mu.Unlock()
			}
			return func() {}
		}}
	if t := s.cfg.JournalTurn; t != nil {
		t.Lock()
		defer t.Unlock()
	}
	out, err := job.SubmitJournal(ctx, deps, s.cfg.Journal, job.SubmitRequest{
		Files: []string{b.Path}, Read: b.readerOptions(s.cfg.Now, s.cfg.MaxUpload), AllowPartial: b.ValidOnly,
		Engine: s.cfg.Engine, Credentials: s.cfg.Credentials(b.Provider),
	})
	var res pipeline.Result
	if out != nil {
		res = out.Result
	}
	if err != nil && paybatch.KindOf(err) == paybatch.ErrInput {
		err = paybatch.WithKind(paybatch.ErrInput, s.fileErr(&b, err))
	}
	return res, err
}

// progressView is the progress section of a batch page and each event of
// its live stream.
type progressView struct {
	BatchID     int64  `json:"batch"`
	State       State  `json:"state"`
	Label       string `json:"label"`
	Phase       string `json:"phase"`
	Done        int    `json:"done"`
	Total       int    `json:"total"`
	Percent     int    `json:"percent"`
	Rate        string `json:"rate"`
	ETA         string `json:"eta"`
	Retries     int64  `json:"retries"`
	RateLimited int64  `json:"rate_limited"`
	Text        string `json:"text"`
	Finished    bool   `json:"finished"`
}

func (q *sender) view(b Batch) *progressView {
	q.mu.Lock()
	p, ok := q.live[b.ID]
	q.mu.Unlock()
	v := &progressView{BatchID: b.ID, State: b.State, Label: b.State.Label(), Finished: b.State.Finished()}
	switch {
	case b.State.Finished():
		v.Done, v.Total, v.Percent = b.Valid, b.Valid, 100
		v.Text = fmt.Sprintf("100%% — finished: %s of %s rows sent and resolved (%s)", groupInt(b.Valid), groupInt(b.Valid), b.State.Label())
		return v
	case !ok && b.State == StateApproved:
		v.Text = "Approved: waiting for the sender to start."
		return v
	case !ok:
		v.Text = "Waiting for the sender (it resumes after a restart)."
		return v
	}
	v.Phase, v.Done, v.Total, v.Retries, v.RateLimited = p.Phase, p.Done, p.Total, p.Retries, p.RateLimited
	if p.Total > 0 {
		v.Percent = p.Done * 100 / p.Total
	}
	phase := "Sending"
	if p.Phase == "poll" {
		phase = "Waiting for final statuses"
	} else if p.Phase == "starting" {
		phase = "Starting"
	}
	v.Text = fmt.Sprintf("%s: %s of %s rows (%d%%)", phase, groupInt(p.Done), groupInt(p.Total), v.Percent)
	if p.Elapsed > 0 && p.Done > 0 {
		rate := float64(p.Done) / p.Elapsed.Seconds()
		v.Rate = fmt.Sprintf("%.1f rows/s", rate)
		left := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second)).Round(time.Second)
		v.ETA = "about " + left.String() + " left"
		v.Text += " · " + v.Rate + " · " + v.ETA
	}
	v.Text += fmt.Sprintf(" · retries %d · rate-limit pauses %d", p.Retries, p.RateLimited)
	return v
}

func (s *Server) reportPath(b Batch) string {
	return filepath.Join(filepath.Dir(b.Path), "report.xlsx")
}
