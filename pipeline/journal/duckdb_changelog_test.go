package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// changeRows are rows whose mutable fields cover every encoding case.
func changeRows() []*Row {
	amount, negative := int64(123456), int64(-7)
	london := time.FixedZone("BST", 3600)
	at := time.Date(2026, 12, 5, 9, 30, 15, 123456789, time.UTC)
	return []*Row{
		{Key: "pb1-zero"}, // every field empty, every time absent
		{Key: "pb1-sending", State: paybatch.StateSending, Attempts: 1, UpdatedAt: at, SentAt: at},
		{Key: "pb1-final", State: paybatch.StateFinal, Outcome: paybatch.OutcomeSucceeded, ProviderStatus: "Succeeded",
			ProviderID: "TX-1", OrderID: "ORD-9", ReasonCode: "R00", Problem: "", HTTPStatus: 200, Attempts: 3,
			UpdatedAt: at.In(london), SentAt: at.Add(-time.Hour), ProviderAmount: &amount,
			ProviderDate: time.Date(2026, 12, 6, 0, 30, 0, 0, london), // the 6th in its zone, the 5th in UTC
			Replayed:     true, Polls: 4, PolledAt: at, FinalAt: at.Add(time.Minute), PollRefusedAt: at.Add(time.Second)},
		{Key: "pb1-odd", State: paybatch.StateFailed, Problem: strings.Repeat("é\x00\n\t\"'", 300), ProviderAmount: &negative,
			HTTPStatus: -1, UpdatedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), FinalAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
}

// TestChangeRoundTrip: a logged change reads back as the row it was, as
// journal_events stores it (eventArgs), whatever its fields hold.
func TestChangeRoundTrip(t *testing.T) {
	var log []byte
	rows := changeRows()
	for i, r := range rows {
		log = appendChange(log, int64(i+1), r)
	}
	var got []loggedChange
	n, err := readChanges(log, func(c loggedChange) error { got = append(got, c); return nil })
	if err != nil || n != len(log) || len(got) != len(rows) {
		t.Fatalf("read %d of %d bytes, %d of %d changes, err %v", n, len(log), len(got), len(rows), err)
	}
	for i, r := range rows {
		want, have := eventArgs(int64(i+1), r), eventArgs(got[i].seq, &got[i].row)
		for c := range want {
			w, h := want[c], have[c]
			if wt, ok := w.(time.Time); ok {
				if ht, ok := h.(time.Time); !ok || !wt.Equal(ht) {
					t.Errorf("row %s column %s: %v, want %v", r.Key, eventColumnName(c), h, w)
				}
				continue
			}
			if !reflect.DeepEqual(w, h) {
				t.Errorf("row %s column %s: %#v, want %#v", r.Key, eventColumnName(c), h, w)
			}
		}
	}
}

func eventColumnName(i int) string {
	return append([]string{"seq", "key"}, eventColumns...)[i]
}

// TestChangeLogTornTail: a log cut anywhere in its last group reads as
// the groups before it, with no error (that group was never acknowledged);
// a frame whose bytes changed ends the log the same way.
func TestChangeLogTornTail(t *testing.T) {
	rows := changeRows()
	var whole []byte
	for i, r := range rows[:3] {
		whole = appendChange(whole, int64(i+1), r)
	}
	kept := len(whole)
	whole = appendChange(whole, 4, rows[3])
	for cut := kept; cut < len(whole); cut++ {
		var seqs []int64
		n, err := readChanges(whole[:cut], func(c loggedChange) error { seqs = append(seqs, c.seq); return nil })
		if err != nil || n != kept || !reflect.DeepEqual(seqs, []int64{1, 2, 3}) {
			t.Fatalf("cut at %d: read %d bytes, seqs %v, err %v; want %d bytes, 1–3", cut, n, seqs, err, kept)
		}
	}
	flipped := bytes.Clone(whole)
	flipped[kept+20] ^= 0x40
	var seqs []int64
	if n, err := readChanges(flipped, func(c loggedChange) error { seqs = append(seqs, c.seq); return nil }); err != nil || n != kept || len(seqs) != 3 {
		t.Fatalf("a changed byte in the last frame: read %d bytes, seqs %v, err %v", n, seqs, err)
	}
}

// FuzzReadChanges: any bytes read as a log never panic, stop within
// them, and every change read back encodes to the very frame it came from.
func FuzzReadChanges(f *testing.F) {
	var log []byte
	for i, r := range changeRows() {
		log = appendChange(log, int64(i+1), r)
	}
	f.Add(log)
	f.Add(log[:len(log)/2])
	f.Add([]byte{})
	f.Add([]byte{0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		off := 0
		n, err := readChanges(b, func(c loggedChange) error {
			frame := appendChange(nil, c.seq, &c.row)
			if !bytes.Equal(frame, b[off:off+len(frame)]) {
				t.Fatalf("change %d at byte %d does not encode back to its frame", c.seq, off)
			}
			off += len(frame)
			return nil
		})
		if n < 0 || n > len(b) || (err == nil && n != off) {
			t.Fatalf("read %d bytes of %d (changes end at %d), err %v", n, len(b), off, err)
		}
	})
}

// pacedJournal opens a journal at a new path with rows ingested and its
// writer paced (as a rate-limited run's), so that its changes are logged.
func pacedJournal(t *testing.T, rows int) (j *DuckDB, row func(int) *Row, at time.Time) {
	t.Helper()
	ctx := context.Background()
	// Logged from a linger of 1 ms, so that Saves in a loop are quick.
	j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{logLinger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeIf(j) })
	at = time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	row = ingestRefunds(ctx, t, j, rows, "paced", at)
	j.SetLinger(time.Millisecond)
	return j, row, at
}

// save saves rows from..to-1 in state st.
func save(t *testing.T, j *DuckDB, row func(int) *Row, from, to int, st paybatch.State, at time.Time) {
	t.Helper()
	for i := from; i < to; i++ {
		r := row(i)
		r.State, r.Attempts, r.UpdatedAt, r.SentAt = st, 1, at, at
		if st == paybatch.StateFinal {
			r.Outcome, r.ProviderID = paybatch.OutcomeSucceeded, "TX-"+r.MerchantTxID
		}
		if err := j.Save(r); err != nil {
			t.Fatal(err)
		}
	}
}

// statesOf reads every row's state, outcome and provider id, by merchant id.
func statesOf(t *testing.T, j *DuckDB) map[string]string {
	t.Helper()
	rows, err := j.Rows(context.Background(), Query{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.MerchantTxID] = string(r.State) + "/" + string(r.Outcome) + "/" + r.ProviderID
	}
	return out
}

func wantStates(t *testing.T, got map[string]string, n int, state func(i int) string) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d rows, want %d", len(got), n)
	}
	for i := range n {
		id := refundID(i)
		if got[id] != state(i) {
			t.Errorf("%s: %s, want %s", id, got[id], state(i))
		}
	}
}

// finalBelow is the states of rows before k final (succeeded, with their
// provider id) and of the rest sending.
func finalBelow(k int) func(i int) string {
	return func(i int) string {
		if i < k {
			return "final/succeeded/TX-" + refundID(i)
		}
		return "sending//"
	}
}

func refundID(i int) string { return fmt.Sprintf("RF-%07d", i) }

// TestPacedChangesAreLoggedNotCommitted: while paced, a Save returns with
// its change durable in the log and none in DuckDB; the writer's stop
// brings them in and removes the log.
func TestPacedChangesAreLoggedNotCommitted(t *testing.T) {
	ctx := context.Background()
	j, row, at := pacedJournal(t, 20)
	save(t, j, row, 0, 20, paybatch.StateSending, at)
	var events int
	if err := j.db.QueryRowContext(ctx, `SELECT count(*) FROM journal_events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(changeLogPath(j.path))
	if err != nil || events != 0 || fi.Size() == 0 {
		t.Fatalf("paced: %d events in DuckDB, log %v (err %v); want none and a log", events, fi, err)
	}
	if err := j.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(changeLogPath(j.path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the log is still there after Flush (%v)", err)
	}
	wantStates(t, statesOf(t, j), 20, func(int) string { return "sending//" })
}

// TestPacedReadsSeeLatestStates: a read that needs the latest states
// (rows, counts by state, pages by state, a snapshot) while a paced
// writer holds changes in its log sees them.
func TestPacedReadsSeeLatestStates(t *testing.T) {
	ctx := context.Background()
	j, row, at := pacedJournal(t, 30)
	save(t, j, row, 0, 30, paybatch.StateSending, at)
	save(t, j, row, 0, 10, paybatch.StateFinal, at.Add(time.Second))
	wantStates(t, statesOf(t, j), 30, finalBelow(10))
	save(t, j, row, 10, 15, paybatch.StateFinal, at.Add(2*time.Second)) // logged after the read's materialise
	counts, err := j.CountStates(ctx, Query{SourceFile: "paced.csv"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[paybatch.State]int{}
	for _, c := range counts {
		got[c.State] += c.Rows
	}
	if got[paybatch.StateFinal] != 15 || got[paybatch.StateSending] != 15 {
		t.Fatalf("counts by state while paced: %v; want 15 final, 15 sending", got)
	}
	page, err := j.Rows(ctx, Query{SourceFile: "paced.csv", States: []paybatch.State{paybatch.StateFinal}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 15 {
		t.Fatalf("%d final rows in the page by state, want 15", len(page))
	}
	snap := filepath.Join(t.TempDir(), "snap.duckdb")
	save(t, j, row, 15, 16, paybatch.StateFinal, at.Add(3*time.Second))
	if err := j.Snapshot(ctx, snap, "paced.csv"); err != nil {
		t.Fatal(err)
	}
	sj, err := OpenDuckDB(ctx, snap, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sj.Close()
	if got := statesOf(t, sj); got[refundID(15)] != "final/succeeded/TX-"+refundID(15) {
		t.Fatalf("snapshot: %s is %q", refundID(15), got[refundID(15)])
	}
}

// crashImage copies the journal's files as a kill would leave them: the
// DuckDB file and WAL as committed, and the change log as written.
func crashImage(t *testing.T, j *DuckDB) string {
	t.Helper()
	return filepath.Join(copyDir(t, filepath.Dir(j.path)), filepath.Base(j.path))
}

// TestPacedChangesSurviveAKill: a kill while paced loses no acknowledged
// change: the next open replays the log, folds it and removes it.
func TestPacedChangesSurviveAKill(t *testing.T) {
	ctx := context.Background()
	j, row, at := pacedJournal(t, 40)
	save(t, j, row, 0, 40, paybatch.StateSending, at)
	if _, err := j.Rows(ctx, Query{}); err != nil { // some changes in DuckDB, some only in the log
		t.Fatal(err)
	}
	save(t, j, row, 0, 25, paybatch.StateFinal, at.Add(time.Second))
	path := crashImage(t, j)
	k, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, err := os.Stat(changeLogPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the log is still there after the open (%v)", err)
	}
	var events int
	if err := k.db.QueryRowContext(ctx, `SELECT count(*) FROM journal_events`).Scan(&events); err != nil || events != 0 {
		t.Fatalf("%d events left unfolded after the open (err %v)", events, err)
	}
	wantStates(t, statesOf(t, k), 40, finalBelow(25))
}

// TestChangeLogReplaysOnlyWhatDuckDBLacks: a kill between a
// materialisation's commit and the log's truncation leaves changes in the
// log that DuckDB already has, and a truncation need not be durable: a
// change whose seq DuckDB already holds is not applied again, even where
// the log holds it after newer ones. (The stale frames here carry a state
// of their own, and seqs that would win, so that applying one would show.)
func TestChangeLogReplaysOnlyWhatDuckDBLacks(t *testing.T) {
	ctx := context.Background()
	j, row, at := pacedJournal(t, 10)
	save(t, j, row, 0, 10, paybatch.StateSending, at) // seq 1–10
	if err := j.materialise(); err != nil {
		t.Fatal(err)
	}
	save(t, j, row, 0, 5, paybatch.StateFinal, at.Add(time.Second)) // seq 11–15, only in the log
	path := crashImage(t, j)
	// Stale frames with seqs DuckDB holds (1–10), each for a row whose
	// own change in DuckDB has a smaller seq: applied, it would win there.
	var stale []byte
	for i := 5; i < 9; i++ { // row i's change is seq i+1
		r := row(i)
		r.State, r.Outcome = paybatch.StateFailed, paybatch.OutcomeFailed
		stale = appendChange(stale, int64(i+2), r)
	}
	logged, err := os.ReadFile(changeLogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changeLogPath(path), append(append(bytes.Clone(stale), logged...), stale...), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	wantStates(t, statesOf(t, k), 10, finalBelow(5))
}

// TestUpgradeReplaysChangeLog: a reader in another process (reconcile,
// journal export) calls Upgrade before it ATTACHes the file: a killed
// paced run's log is brought in first, so the export view has its states.
func TestUpgradeReplaysChangeLog(t *testing.T) {
	ctx := context.Background()
	j, row, at := pacedJournal(t, 5)
	save(t, j, row, 0, 5, paybatch.StateFinal, at)
	path := crashImage(t, j)
	if err := Upgrade(ctx, path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(changeLogPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the log is still there after Upgrade (%v)", err)
	}
	k, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	var final int
	if err := k.db.QueryRowContext(ctx, `SELECT count(*) FROM journal_export WHERE state = 'final'`).Scan(&final); err != nil || final != 5 {
		t.Fatalf("%d final rows in journal_export (err %v), want 5", final, err)
	}
}

// TestChangeLogWithoutItsJournal: a log left beside a journal that is
// gone is not replayed into a new one (its changes are another journal's
// history): the open is refused, naming the file and what to do.
func TestChangeLogWithoutItsJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.duckdb")
	if err := os.WriteFile(changeLogPath(path), appendChange(nil, 1, changeRows()[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenDuckDB(context.Background(), path, Options{})
	var de *DamagedError
	if !errors.As(err, &de) {
		t.Fatalf("open: %v, want a DamagedError", err)
	}
	for _, s := range []string{"change log " + changeLogPath(path), "put the journal back", "move " + changeLogPath(path) + " away"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not say %q", err, s)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a journal was created beside the log (%v)", err)
	}
}

// TestNoFoldWhileAChangeLogIsLeft: a fold never runs while a change log
// the writer could not commit is beside the journal (its changes are newer
// than every event; folding first would let them be replayed out of
// order), and no paced writer starts over it.
func TestNoFoldWhileAChangeLogIsLeft(t *testing.T) {
	ctx := context.Background()
	j, row, at := pacedJournal(t, 3)
	j.SetLinger(0)
	save(t, j, row, 0, 3, paybatch.StateSending, at)
	if err := os.WriteFile(changeLogPath(j.path), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := j.Flush(ctx); err == nil || !strings.Contains(err.Error(), "has not been committed") {
		t.Fatalf("Flush with a change log left: %v", err)
	}
	// Nor does a paced writer start over it: the run stops, saying what to do.
	j.SetLinger(time.Millisecond)
	if err := j.Save(row(0)); err == nil || !strings.Contains(err.Error(), "of an earlier failure is still there") ||
		!strings.Contains(err.Error(), "run again") {
		t.Fatalf("a paced Save with a change log left: %v", err)
	}
	os.Remove(changeLogPath(j.path))
}

// TestFastWriterCommitsToDuckDB: a writer lingering less than logLinger
// (a run faster than 1,280 requests a second, or unthrottled) commits its
// groups to DuckDB, as before the log, and leaves no log.
func TestFastWriterCommitsToDuckDB(t *testing.T) {
	ctx := context.Background()
	j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	at := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	row := ingestRefunds(ctx, t, j, 3, "fast", at)
	for _, linger := range []time.Duration{0, logLinger - time.Millisecond} {
		j.SetLinger(linger)
		save(t, j, row, 0, 3, paybatch.StateSending, at)
		var events int
		if err := j.db.QueryRowContext(ctx, `SELECT count(*) FROM journal_events`).Scan(&events); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(changeLogPath(j.path)); !errors.Is(err, os.ErrNotExist) || events != 3 {
			t.Fatalf("linger %v: %d events in DuckDB, log %v; want 3 and none", linger, events, err)
		}
		if err := j.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
