package journal

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Committer is what a journal backend gives the GroupWriter: one durable
// commit of a group of state changes.
type Committer interface {
	// Commit durably records the mutable fields of every change's row, in
	// order (a later change of a key wins). refused, when not nil, names a
	// change the store would not take (another process moved the row on):
	// a Save of that row gets its error.
	Commit(group []Change) (refused func(*Row) error, err error)
}

// Change is one state change in a commit group.
type Change struct {
	Row  *Row // a copy of the row as it was saved
	Save bool // from Save (its caller waits: an intent), not SaveLater
}

// maxGroup bounds one commit group; queueLen bounds writes waiting for one
// (a writer lingering 200 ms holds 20,000 changes a second before a Save
// waits for room).
const (
	maxGroup = 1024
	queueLen = 4096
)

// GroupWriter sends a journal's state changes through one goroutine that
// commits them in groups: a Save blocks until the group holding its change
// is committed, so "state written before the request leaves" holds, while
// one commit serves every change that arrived meanwhile.
//
// At a rate limit the changes arrive one at a time, so each would be a
// commit of its own (an fsync, and most of a row's CPU). SetLinger lets the
// first change of a group wait up to d for company: the engine sets it to a
// few departures' worth of its pacing, so the intents of the rows the pacer
// releases in the next few milliseconds — and the answers of those just
// back — share one commit, while rows whose intent is already committed keep
// the pacer busy.
type GroupWriter struct {
	c      Committer
	in     chan gwrite
	quit   chan struct{}
	exit   chan struct{}
	linger atomic.Int64 // time.Duration

	errMu sync.Mutex
	err   error // first commit error (sticky)
}

type gwrite struct {
	row  *Row // a copy
	done chan error
}

// NewGroupWriter starts a writer committing through c, lingering d (see
// SetLinger).
func NewGroupWriter(c Committer, linger time.Duration) *GroupWriter {
	w := &GroupWriter{c: c, in: make(chan gwrite, queueLen), quit: make(chan struct{}), exit: make(chan struct{})}
	w.linger.Store(int64(linger))
	go w.run()
	return w
}

// SetLinger sets how long the first change of a group may wait for others
// before the group commits (0: commit at once).
func (w *GroupWriter) SetLinger(d time.Duration) { w.linger.Store(int64(max(d, 0))) }

func (w *GroupWriter) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.err
}

// copyRow copies r for a commit. The text a provider or an error gave (a
// status, an id, a reason, a problem) is stored as UTF-8, bytes that are
// not replaced by U+FFFD: neither backend stores anything else, and a
// change it refused stopped the run at its commit (DuckDB) — or, logged
// first (duckdb_changelog.go), would have stopped every later open.
func copyRow(r *Row) *Row {
	c := *r
	if r.ProviderAmount != nil {
		v := *r.ProviderAmount
		c.ProviderAmount = &v
	}
	for _, s := range [...]*string{&c.ProviderStatus, &c.ProviderID, &c.OrderID, &c.ReasonCode, &c.Problem} {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
	return &c
}

// Save durably records r's mutable fields and returns once committed.
func (w *GroupWriter) Save(r *Row) error {
	wr := gwrite{row: copyRow(r), done: make(chan error, 1)}
	select {
	case w.in <- wr:
	case <-w.exit:
		return ErrWriterClosed
	}
	select {
	case err := <-wr.done:
		return err
	case <-w.exit:
		select {
		case err := <-wr.done:
			return err
		default:
			return ErrWriterClosed
		}
	}
}

// SaveLater queues r's mutable fields for the next group commit without
// waiting for it. Writes from one goroutine are committed in order; an
// error surfaces on the next save or Close.
func (w *GroupWriter) SaveLater(r *Row) error {
	if err := w.failed(); err != nil {
		return err
	}
	select {
	case w.in <- gwrite{row: copyRow(r)}:
		return nil
	case <-w.exit:
		return ErrWriterClosed
	}
}

// Close commits what is queued, stops the writer and returns the first
// commit error.
func (w *GroupWriter) Close() error {
	close(w.quit)
	<-w.exit
	return w.failed()
}

func (w *GroupWriter) run() {
	defer close(w.exit)
	group := make([]gwrite, 0, maxGroup)
	var timer *time.Timer
	for {
		backlog := len(group) == maxGroup // the last group left changes queued: they have waited enough
		group = group[:0]
		select {
		case <-w.quit:
			w.drain(group)
			return
		case wr := <-w.in:
			group = append(group, wr)
		}
		if d := time.Duration(w.linger.Load()); d > 0 && !backlog {
			// The changes that arrive meanwhile wait in the queue: the
			// writer sleeps through the linger instead of waking for each
			// (at a limit, hundreds of wake-ups a second of a process
			// otherwise idle cost more CPU than the changes themselves).
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-w.quit:
				timer.Stop()
				w.drain(group)
				return
			}
		}
	more:
		for len(group) < maxGroup {
			select {
			case wr := <-w.in:
				group = append(group, wr)
			default:
				break more
			}
		}
		w.commit(group)
	}
}

// drain commits group and everything still queued (queued writes were
// handed over before the writer stopped).
func (w *GroupWriter) drain(group []gwrite) {
	for {
		for len(group) < maxGroup {
			select {
			case wr := <-w.in:
				group = append(group, wr)
				continue
			default:
			}
			break
		}
		if len(group) == 0 {
			return
		}
		w.commit(group)
		group = group[:0]
	}
}

func (w *GroupWriter) commit(group []gwrite) {
	changes := make([]Change, len(group))
	for i, wr := range group {
		changes[i] = Change{Row: wr.row, Save: wr.done != nil}
	}
	refused, err := w.c.Commit(changes)
	if err != nil {
		w.errMu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.errMu.Unlock()
	}
	for _, wr := range group {
		if wr.done == nil {
			continue
		}
		e := err
		if e == nil && refused != nil {
			e = refused(wr.row)
		}
		wr.done <- e
	}
}
