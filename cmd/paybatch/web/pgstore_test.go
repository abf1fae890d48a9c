package web

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:     `SELECT 1`,
		`SELECT ? , ?`: `SELECT $1 , $2`,
		`UPDATE t SET a = '?', b = ? WHERE "c?" = ?`: `UPDATE t SET a = '?', b = $1 WHERE "c?" = $2`,
		`SELECT 'it''s ?', ?`:                        `SELECT 'it''s ?', $1`,
		`INSERT INTO t VALUES (nextval('s'), ?, ?)`:  `INSERT INTO t VALUES (nextval('s'), $1, $2)`,
		`WHERE x IN (?, ?, ?) LIMIT ? OFFSET ?`:      `WHERE x IN ($1, $2, $3) LIMIT $4 OFFSET $5`,
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

// The Store behaves the same on a DuckDB journal and on a PostgreSQL one:
// users, sessions, batches, maker-checker decisions (two approvers racing
// for a batch that needs one: one wins) and the audit trail.
func TestStoreOnBothJournals(t *testing.T) {
	ctx := context.Background()
	for _, backend := range []string{"duckdb", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var s Store
			if backend == "duckdb" {
				j, err := journal.OpenDuckDB(ctx, filepath.Join(t.TempDir(), "journal.duckdb"), journal.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { j.Close() })
				if s, err = OpenStore(ctx, j); err != nil {
					t.Fatal(err)
				}
			} else {
				j, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { j.Close() })
				if s, err = OpenPostgresStore(ctx, j); err != nil {
					t.Fatal(err)
				}
			}
			storeBehaviour(t, s)
		})
	}
}

func storeBehaviour(t *testing.T, s Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	users := map[string]User{}
	for _, u := range []User{{Name: "maker", Role: RoleUploader}, {Name: "checker1", Role: RoleApprover}, {Name: "checker2", Role: RoleApprover}} {
		u.PasswordHash, u.CreatedAt = "hash-"+u.Name, now
		got, err := s.CreateUser(ctx, u)
		if err != nil || got.ID == 0 {
			t.Fatalf("create %s: %v (id %d)", u.Name, err, got.ID)
		}
		users[u.Name] = got
	}
	if _, err := s.CreateUser(ctx, User{Name: "MAKER", Role: RoleViewer, PasswordHash: "x", CreatedAt: now}); !errors.Is(err, ErrExists) {
		t.Errorf("a second user named MAKER: %v, want ErrExists", err)
	}
	if u, err := s.UserByName(ctx, "Checker1"); err != nil || u.ID != users["checker1"].ID || u.Role != RoleApprover {
		t.Errorf("UserByName: %+v %v", u, err)
	}
	if err := s.CreateSession(ctx, "tok", users["maker"].ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Session(ctx, "tok", now); err != nil || u.Name != "maker" {
		t.Errorf("session: %+v %v", u, err)
	}
	if _, err := s.Session(ctx, "tok", now.Add(2*time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired session: %v, want ErrNotFound", err)
	}

	var ids []int64
	for i := range 3 {
		id, err := s.NextBatchID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := Batch{ID: id, Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry, FileName: "refunds.csv", Path: "/x/refunds.csv",
			SHA256: "abc", Size: 100, UploaderID: users["maker"].ID, UploadedAt: now, State: StateUploaded, Rows: 10 + i, Valid: 10 + i,
			Summary: Summary{}, ApprovalsNeeded: 1}
		if err := s.CreateBatch(ctx, b); err != nil {
			t.Fatalf("create batch: %v", err)
		}
		ids = append(ids, id)
	}
	got, total, err := s.Batches(ctx, StateUploaded, 1, 1)
	if err != nil || total != 3 || len(got) != 1 || got[0].ID != ids[1] || got[0].Uploader != "maker" || got[0].Rows != 11 {
		t.Fatalf("batches page 2: %+v total %d %v", got, total, err)
	}
	id := ids[0]
	b, err := s.Submit(ctx, id, users["maker"].ID, false, AuditEvent{User: "maker", Action: "submitted"})
	if err != nil || b.State != StateAwaiting {
		t.Fatalf("submit: %+v %v", b, err)
	}
	if _, err := s.Decide(ctx, id, Approval{UserID: users["maker"].ID, User: "maker", Approve: true, At: now}); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("the maker approving: %v, want ErrSelfApproval", err)
	}
	// Two approvers at once on a batch that needs one approval: one starts it.
	var wg sync.WaitGroup
	res := make([]error, 2)
	started := make([]bool, 2)
	for i, name := range []string{"checker1", "checker2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.Decide(ctx, id, Approval{UserID: users[name].ID, User: name, Approve: true, Comment: "ok", At: now})
			res[i], started[i] = err, d.Started
		}()
	}
	wg.Wait()
	wins := 0
	for i := range 2 {
		switch {
		case res[i] == nil && started[i]:
			wins++
		case res[i] != nil && !errors.Is(res[i], ErrStateChanged):
			t.Errorf("approver %d: %v", i+1, res[i])
		}
	}
	if wins != 1 {
		t.Errorf("%d decisions started the batch (%v), want exactly 1", wins, res)
	}
	if b, err = s.Batch(ctx, id); err != nil || b.State != StateApproved || b.Approvals != 1 {
		t.Errorf("after the race: %+v %v", b, err)
	}
	if _, err := s.Transition(ctx, id, []State{StateUploaded}, StateCancelled, "", AuditEvent{User: "maker", Action: "cancelled"}); !errors.Is(err, ErrStateChanged) {
		t.Errorf("cancelling an approved batch: %v, want ErrStateChanged", err)
	}
	if b, err = s.Transition(ctx, id, []State{StateApproved}, StateSending, "", AuditEvent{User: "system", Action: "sending"}); err != nil || b.State != StateSending {
		t.Errorf("approved → sending: %+v %v", b, err)
	}
	trail, err := s.AuditTrail(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ", "); got != "uploaded, submitted, approved, queued for sending, sending" {
		t.Errorf("audit trail %v", actions)
	}
	u := users["checker2"]
	u.Disabled = true
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if all, err := s.Users(ctx); err != nil || len(all) != 3 || !all[1].Disabled {
		t.Errorf("users after disabling checker2: %+v %v", all, err)
	}
}
