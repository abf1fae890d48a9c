package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/journaltest"
)

// TestWatchJournalEndsServeOnInvalidated: the server's journal watch says
// nothing while the journal is sound, and ends the server with DuckDB's
// answer (and what a restart does) once DuckDB has invalidated the
// journal's database — after which every page, sign-in and send would fail.
func TestWatchJournalEndsServeOnInvalidated(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := journal.OpenDuckDB(ctx, filepath.Join(t.TempDir(), "journal.duckdb"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	tick := make(chan time.Time) // unbuffered: a tick is taken once the last probe is done
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchJournal(ctx, j.Invalidated, tick, errc)
	}()
	for range 3 {
		tick <- time.Now()
	}
	tick <- time.Now() // the third probe is done
	select {
	case err := <-errc:
		t.Fatalf("a sound journal: %v", err)
	default:
	}

	journaltest.Invalidate(t, j.SQL())
	tick <- time.Now()
	select {
	case err := <-errc:
		if !journal.IsInvalidated(err) || !strings.Contains(err.Error(), "restart the server") {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the watch did not end the server")
	}
	<-done
}
