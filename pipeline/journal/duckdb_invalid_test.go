package journal_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/journaltest"
)

// TestInvalidatedJournal: once DuckDB has invalidated the journal's
// database (an internal error, as session 10's CI met in a window
// function), every call fails until the file is opened again, Invalidated
// says so (and not before), and the file opened again holds every
// committed row and state change — not the change refused after it.
func TestInvalidatedJournal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "inv.duckdb")
	j, err := journal.OpenDuckDB(ctx, path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []*journal.Row
	for i := range 6 {
		rows = append(rows, journaltest.Row(i, int64(100+i)))
	}
	if _, err := j.Ingest(ctx, journaltest.Seq(rows...), time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	sending := func(r *journal.Row) *journal.Row {
		c := *r
		c.State, c.Attempts = paybatch.StateSending, 1
		return &c
	}
	if err := j.Save(sending(rows[1])); err != nil { // committed, waiting to be folded
		t.Fatal(err)
	}
	if err := j.Invalidated(ctx); err != nil {
		t.Fatalf("a sound journal: %v", err)
	}

	journaltest.Invalidate(t, j.SQL())

	if err := j.Invalidated(ctx); !journal.IsInvalidated(err) {
		t.Fatalf("Invalidated: %v", err)
	}
	if _, err := j.Rows(ctx, journal.Query{}); !journal.IsInvalidated(err) {
		t.Errorf("Rows: %v", err)
	}
	if err := j.Save(sending(rows[2])); !journal.IsInvalidated(err) {
		t.Errorf("Save: %v", err)
	}
	if err := j.Close(); !journal.IsInvalidated(err) {
		t.Errorf("Close: %v", err)
	}

	j, err = journal.OpenDuckDB(ctx, path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Invalidated(ctx); err != nil {
		t.Fatalf("opened again: %v", err)
	}
	got, err := j.Rows(ctx, journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d rows, want %d", len(got), len(rows))
	}
	for i, r := range got {
		want := paybatch.StatePending
		if i == 1 {
			want = paybatch.StateSending
		}
		if r.Key != rows[i].Key || r.State != want {
			t.Errorf("row %d: %s %s, want %s %s", i, r.Key, r.State, rows[i].Key, want)
		}
	}
}
