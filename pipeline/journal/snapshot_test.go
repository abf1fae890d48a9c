package journal

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// TestSnapshot: a snapshot holds one source file's rows with their latest
// (unfolded) states and its rejects, and reads back as a journal.
func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, err := OpenDuckDB(ctx, filepath.Join(dir, "j.duckdb"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now := time.Now()
	mk := func(k, file string) *Row {
		return &Row{Key: k, Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, MerchantTxID: k, State: paybatch.StatePending,
			BodySHA256: "h" + k, Source: paybatch.Source{File: file, Row: 2}, CreatedAt: now, UpdatedAt: now}
	}
	rows := []*Row{mk("a", "one.csv"), mk("b", "one.csv"), mk("c", "two.csv")}
	src := func(yield func(*Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
	if _, err := j.Ingest(ctx, src, now); err != nil {
		t.Fatal(err)
	}
	rows[0].State, rows[0].Outcome = paybatch.StateFinal, paybatch.OutcomeSucceeded
	if err := j.Save(rows[0]); err != nil { // an event, not folded
		t.Fatal(err)
	}
	if err := j.RecordRejects(ctx, []Reject{{Source: paybatch.Source{File: "one.csv", Row: 9}, Column: "amount", Value: "x", Reason: "bad"},
		{Source: paybatch.Source{File: "two.csv", Row: 9}, Column: "amount", Value: "y", Reason: "bad"}}); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "snap.duckdb")
	if err := j.Snapshot(ctx, snap, "one.csv"); err != nil {
		t.Fatal(err)
	}
	if err := j.Snapshot(ctx, snap, "one.csv"); err == nil {
		t.Error("a snapshot over an existing file")
	}
	s, err := OpenDuckDB(ctx, snap, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Rows(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	rj, err := s.Rejects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "a" || got[0].State != paybatch.StateFinal || got[1].State != paybatch.StatePending ||
		len(rj) != 1 || rj[0].Value != "x" {
		t.Fatalf("snapshot rows %+v rejects %+v", got, rj)
	}
}
