package web

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/paybatch/paybatch/pipeline/journal"
)

// The outcome pages of a finished batch read its rows through an index
// counted once: the rows per filter (journal.CountStates, one pass) and
// where each filter term's pages end (journal.PageBounds, one query per
// term that has rows). Counting a million rows takes a second or more
// (several on PostgreSQL), so it is done in the background — when the
// batch finishes sending, or at the first view after the server started —
// and the index fills in as it goes: until a term's bounds are there, its
// pages are keyset pages (as while sending), and until the counts are,
// the pager shows no total. No view waits for the count.
//
// The index is kept while the journal version it was counted at is
// current. Every change to the rows of the server's journal by the server
// comes through its journal turn (its sends, and the scheduled jobs on its
// own DuckDB journal: the turn's Unlock counts one version up, see
// JournalTurn), so on a DuckDB journal, which no other process can open, a
// kept index is never stale. A PostgreSQL journal is shared with other
// processes: an index older than outcomeIndexTTL is counted again in the
// background when viewed (the old one serves meanwhile), and a page that
// comes up short of what its bounds promise drops the index at once.

// outcomeIndexTTL is how long a counted index serves before it is counted
// again in the background (for changes by other processes).
const outcomeIndexTTL = 30 * time.Second

// maxOutcomeIndexes caps how many batches' indexes are kept (a million-row
// batch's is ≈ 40,000 ints).
const maxOutcomeIndexes = 16

// termKey names one term of one outcome filter (outcomeTerms).
type termKey struct {
	class string
	term  int
}

// outcomeIndex is one count of a batch's outcome index.
type outcomeIndex struct {
	version int64     // the server's journal version it was counted at
	started time.Time // when counting began
	mu      sync.Mutex
	counts  map[string]int                 // per filter; nil until counted
	bounds  map[termKey]journal.PageBounds // filled term by term
	done    chan struct{}                  // closed once counted (or failed)
	err     error
}

// pageBounds returns the bounds of the term, when counted (x may be nil),
// for pages of size rows.
func (x *outcomeIndex) pageBounds(k termKey, size int) (journal.PageBounds, bool) {
	if x == nil || size != pageSize {
		return journal.PageBounds{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	pb, ok := x.bounds[k]
	return pb, ok
}

// indexEntry is a batch's index in use and, while one is being counted to
// replace it (outcomeIndexTTL), that one.
type indexEntry struct {
	use, next *outcomeIndex
}

// journalTurn is the server's journal turn (Config.JournalTurn): each
// Unlock ends a piece of work that may have changed rows, and counts the
// journal version up.
type journalTurn struct {
	sync.Locker
	s *Server
}

func (t journalTurn) Unlock() {
	t.s.journalVersion.Add(1)
	t.Locker.Unlock()
}

// JournalTurn is the lock the server's sends take on its journal; work
// that changes the journal's rows in this process (the scheduled jobs on
// the server's own DuckDB journal) must take it too, so that what the
// server keeps of the rows (the outcome index) is counted again.
func (s *Server) JournalTurn() sync.Locker { return s.turn }

// outcomeIndexOf returns the batch's outcome index when it is finished and
// an index counted at the current journal version is there (complete or
// filling in), else nil; either way it makes sure one is being counted.
func (s *Server) outcomeIndexOf(b Batch) *outcomeIndex {
	if !b.State.Finished() || s.cfg.Journal == nil {
		return nil
	}
	v := s.journalVersion.Load()
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	e := s.indexes[b.ID]
	if e.next != nil && e.next.version == v && isDone(e.next.done) && e.next.err == nil {
		e.use, e.next = e.next, nil
	}
	if e.next != nil && isDone(e.next.done) {
		e.next = nil
	}
	if e.use != nil && (e.use.version != v || isDone(e.use.done) && e.use.err != nil) {
		e.use = nil
	}
	switch {
	case e.use == nil && e.next != nil && e.next.version == v:
		e.use, e.next = e.next, nil // being counted: serve what is there
	case e.use == nil:
		e.use = s.countOutcomes(b, v)
	case e.next == nil && isDone(e.use.done) && s.cfg.Now().Sub(e.use.started) > outcomeIndexTTL:
		e.next = s.countOutcomes(b, v)
	}
	s.keepIndex(b.ID, e)
	return e.use
}

// keepIndex stores e, forgetting another batch's index when there are too
// many. idxMu is held.
func (s *Server) keepIndex(id int64, e indexEntry) {
	if _, ok := s.indexes[id]; !ok && len(s.indexes) >= maxOutcomeIndexes {
		for k := range s.indexes {
			delete(s.indexes, k)
			break
		}
	}
	s.indexes[id] = e
}

// dropOutcomeIndex forgets x, the batch's index, once a page showed it
// stale; the next view counts again.
func (s *Server) dropOutcomeIndex(id int64, x *outcomeIndex) {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if e, ok := s.indexes[id]; ok && e.use == x {
		e.use = nil
		s.indexes[id] = e
	}
}

// warmOutcomes starts counting a batch's outcome index (a batch that just
// finished sending), so the first view finds it.
func (s *Server) warmOutcomes(b Batch) { s.outcomeIndexOf(b) }

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// countOutcomes starts counting the batch's index at journal version v in
// the background. idxMu is held.
func (s *Server) countOutcomes(b Batch, v int64) *outcomeIndex {
	x := &outcomeIndex{version: v, started: s.cfg.Now(), bounds: map[termKey]journal.PageBounds{}, done: make(chan struct{})}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(x.done)
		ctx, cancel := context.WithTimeout(s.bgCtx, 10*time.Minute)
		defer cancel()
		if err := s.count(ctx, b, x); err != nil {
			x.mu.Lock()
			x.err = err
			x.mu.Unlock()
			if s.bgCtx.Err() == nil {
				s.log.Error("outcome index", "batch", b.ID, "err", err)
			}
		}
	}()
	return x
}

// count fills x in: the counts per filter first (one pass over the
// batch's rows by state and outcome), then each term's page bounds,
// "all" first; a term with no rows needs no query.
func (s *Server) count(ctx context.Context, b Batch, x *outcomeIndex) error {
	states, err := s.cfg.Journal.CountStates(ctx, journal.Query{SourceFile: b.Path})
	if err != nil {
		return fmt.Errorf("journal counts of batch %d: %w", b.ID, err)
	}
	matches := func(q journal.Query) int {
		n := 0
		for _, sc := range states {
			if (len(q.States) == 0 || slices.Contains(q.States, sc.State)) && (len(q.Outcomes) == 0 || slices.Contains(q.Outcomes, sc.Outcome)) {
				n += sc.Rows
			}
		}
		return n
	}
	// The counts, and the (empty) bounds of every term with no rows, at
	// once: a filter with no rows needs no query from now on.
	c := map[string]int{}
	x.mu.Lock()
	for _, f := range outcomeFilters {
		for ti, q := range outcomeTerms(f) {
			n := matches(q)
			c[f] += n
			if n == 0 {
				x.bounds[termKey{f, ti}] = journal.PageBounds{}
			}
		}
	}
	x.counts = c
	x.mu.Unlock()
	for _, f := range outcomeFilters {
		for ti, q := range outcomeTerms(f) {
			if matches(q) == 0 {
				continue
			}
			q.SourceFile = b.Path
			pb, err := s.cfg.Journal.PageBounds(ctx, q, pageSize)
			if err != nil {
				return fmt.Errorf("journal page bounds of batch %d: %w", b.ID, err)
			}
			x.mu.Lock()
			x.bounds[termKey{f, ti}] = pb
			x.mu.Unlock()
		}
	}
	return nil
}
