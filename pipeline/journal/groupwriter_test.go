package journal

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// countingCommitter records the size of every group it commits.
type countingCommitter struct {
	mu     sync.Mutex
	groups []int
}

func (c *countingCommitter) Commit(group []Change) (func(*Row) error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups = append(c.groups, len(group))
	return nil, nil
}

func (c *countingCommitter) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.groups...)
}

// TestGroupWriterLingerGathersOneGroup: the changes that arrive while the
// first of a group lingers are committed with it, in one commit, and a Save
// among them returns only once that commit is done.
func TestGroupWriterLingerGathersOneGroup(t *testing.T) {
	c := &countingCommitter{}
	const linger = 300 * time.Millisecond
	w := NewGroupWriter(c, linger)
	start := time.Now()
	for i := range 50 {
		if err := w.SaveLater(&Row{Key: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Save(&Row{Key: "intent"}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < linger {
		t.Errorf("Save returned after %v, before the group's linger (%v) ended", el, linger)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := c.sizes(); len(got) != 1 || got[0] != 51 {
		t.Fatalf("commit groups %v, want one of 51", got)
	}
}

// TestGroupWriterBacklogSkipsLinger: when more changes are queued than one
// group holds, the rest are committed right after it — they have waited a
// linger already — instead of lingering again.
func TestGroupWriterBacklogSkipsLinger(t *testing.T) {
	c := &countingCommitter{}
	const linger = time.Second
	w := NewGroupWriter(c, linger)
	start := time.Now()
	for i := range maxGroup + 5 {
		if err := w.SaveLater(&Row{Key: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Save(&Row{Key: "intent"}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el >= 2*linger-200*time.Millisecond {
		t.Errorf("the intent queued behind a full group committed after %v: the second group lingered again", el)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := c.sizes(); len(got) != 2 || got[0] != maxGroup || got[1] != 6 {
		t.Fatalf("commit groups %v, want [%d 6]", got, maxGroup)
	}
}

// TestGroupWriterCloseDuringLinger: Close while a group lingers commits
// everything queued at once.
func TestGroupWriterCloseDuringLinger(t *testing.T) {
	c := &countingCommitter{}
	w := NewGroupWriter(c, time.Hour)
	for i := range 10 {
		if err := w.SaveLater(&Row{Key: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // the writer took the first and lingers
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the linger")
	}
	total := 0
	for _, n := range c.sizes() {
		total += n
	}
	if total != 10 {
		t.Fatalf("%d changes committed, want 10", total)
	}
}
