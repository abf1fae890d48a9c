package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// testKDF keeps hashing cheap in tests; the format and code path are the
// production ones.
var testKDF = KDF{Memory: 1024, Time: 1, Threads: 1}

const testPassword = "correct horse battery"

// clock is a settable clock for expiry and throttling tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// harness is the real server on a real listener, with a real journal
// (DuckDB in a temp dir, or a fresh PostgreSQL database: newHarnessOn) and
// the real sandbox over HTTP.
type harness struct {
	t       testing.TB
	srv     *Server
	ts      *httptest.Server
	sandbox *sandbox.Server
	store   *DuckStore
	journal Journal
	clock   *clock
	users   map[string]User
	dir     string
}

func newHarness(t testing.TB, tweak ...func(*Config)) *harness {
	t.Helper()
	return newHarnessOn(t, "duckdb", tweak...)
}

// newHarnessOn is newHarness on a journal of backend "duckdb" or
// "postgres" (skipped without a test cluster, see pgtest).
func newHarnessOn(t testing.TB, backend string, tweak ...func(*Config)) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	fb, err := fs.ReadFile(paybatch.DemoData(), "fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	fx, err := sandbox.LoadFixtures(bytes.NewReader(fb))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Options{Fixtures: fx, Seed: 1, SmartRetry: srsandbox.SandboxConfig{SettleAfter: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	sbts := httptest.NewServer(sb)
	t.Cleanup(func() { sb.Close(); sbts.Close() })

	var j Journal
	var store *DuckStore
	switch backend {
	case "duckdb":
		// As paybatch serve opens it (job.HoldJournal): the states of
		// the files being sent are kept for pages by state.
		dj, err := journal.OpenDuckDB(ctx, filepath.Join(dir, "journal.duckdb"), journal.Options{KeepSendStates: true})
		if err != nil {
			t.Fatal(err)
		}
		j = dj
		store, err = OpenStore(ctx, dj)
		if err != nil {
			t.Fatal(err)
		}
	case "postgres":
		pj, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		j = pj
		store, err = OpenPostgresStore(ctx, pj)
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("no journal backend %q", backend)
	}
	ledger := filepath.Join(dir, "ledger.csv")
	lb, _ := fs.ReadFile(paybatch.DemoData(), "ledger.csv")
	if err := os.WriteFile(ledger, lb, 0o644); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	cfg := Config{
		Store: store, Journal: j, DataDir: dir, KDF: testKDF, Now: clk.Now, Ledger: ledger,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Credentials: func(p paybatch.Provider) job.Credentials {
			if p != paybatch.SmartRetry {
				return job.Credentials{}
			}
			return job.Credentials{Secret: srsandbox.TestAPIKey, BaseURL: sbts.URL}
		},
		Engine: job.Engine{PollDeadline: 20 * time.Second},
	}
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	if err := srv.Start(sctx); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		cancel()
		srv.Close()
		j.Close()
	})
	h := &harness{t: t, srv: srv, ts: ts, sandbox: sb, store: store, journal: j, clock: clk, users: map[string]User{}, dir: dir}
	for _, u := range []struct {
		name string
		role Role
	}{{"uma", RoleUploader}, {"ulla", RoleUploader}, {"alex", RoleApprover}, {"sam", RoleApprover}, {"ada", RoleAdmin}, {"vic", RoleViewer}} {
		h.addUser(u.name, u.role)
	}
	return h
}

func (h *harness) addUser(name string, role Role) User {
	h.t.Helper()
	hash, err := HashPassword(testPassword, testKDF)
	if err != nil {
		h.t.Fatal(err)
	}
	u, err := h.store.CreateUser(context.Background(), User{Name: name, Role: role, PasswordHash: hash, CreatedAt: h.clock.Now()})
	if err != nil {
		h.t.Fatal(err)
	}
	h.users[name] = u
	return u
}

// client is a browser-like client: a cookie jar, redirects not followed
// (tests look at them).
func (h *harness) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn returns a client signed in as name.
func (h *harness) signIn(name string) *http.Client {
	h.t.Helper()
	c := h.client()
	res := h.post(c, "/login", url.Values{"name": {name}, "password": {testPassword}})
	if res.status != http.StatusSeeOther {
		h.t.Fatalf("sign in as %s: %d %s", name, res.status, res.body)
	}
	return c
}

type response struct {
	status int
	header http.Header
	body   string
}

func (h *harness) do(c *http.Client, req *http.Request) response {
	h.t.Helper()
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, string(b)}
}

func (h *harness) get(c *http.Client, path string) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.ts.URL+path, nil)
	return h.do(c, req)
}

func (h *harness) post(c *http.Client, path string, form url.Values, hdr ...string) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return h.do(c, req)
}

// upload posts a file the way the upload form does.
func (h *harness) upload(c *http.Client, kind, name string, content []byte) response {
	h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("kind", kind)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return h.do(c, req)
}

// uploaded uploads and returns the new batch's id.
func (h *harness) uploaded(c *http.Client, kind, name string, content []byte) int64 {
	h.t.Helper()
	res := h.upload(c, kind, name, content)
	if res.status != http.StatusSeeOther {
		h.t.Fatalf("upload %s: %d %s", name, res.status, res.body)
	}
	var id int64
	if _, err := fmt.Sscanf(res.header.Get("Location"), "/batches/%d", &id); err != nil {
		h.t.Fatalf("upload redirect %q: %v", res.header.Get("Location"), err)
	}
	return id
}

func (h *harness) batch(id int64) Batch {
	h.t.Helper()
	b, err := h.store.Batch(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// waitState waits until batch id is in a finished or stopped state.
func (h *harness) waitFinished(id int64) Batch {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		b := h.batch(id)
		if b.State.Finished() || b.State == StateStopped {
			return b
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("batch %d did not finish: %s", id, h.batch(id).State)
	return Batch{}
}

// demoCSV is the bundled demo refund batch (8 valid rows).
func demoCSV(t *testing.T) []byte {
	b, err := fs.ReadFile(paybatch.DemoData(), "refunds.csv")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rejectsXLSX is the demo batch as a workbook plus three bad rows: an
// amount with too many decimals, a card number typed into the terminal
// column, and an unknown currency.
func rejectsXLSX(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	rows := [][]any{{"Terminal", "Transaction Reference ID", "Order Reference ID", "Merchant Txn ID", "Amount", "Currency"}}
	for i, line := range strings.Split(strings.TrimSpace(string(demoCSV(t))), "\n")[1:] {
		cells := strings.Split(strings.TrimSpace(line), ",")
		row := make([]any, len(cells))
		for j, c := range cells {
			row[j] = c
		}
		_ = i
		rows = append(rows, row)
	}
	rows = append(rows,
		[]any{"ABC123", "TXS00001", "ORS00001", "RF-2001", "12.345", "USD"},
		[]any{"4111111111111111", "TXS00002", "ORS00002", "RF-2002", "1.00", "USD"},
		[]any{"ABC123", "TXS00003", "ORS00003", "RF-2003", "3.00", "ZZZ"},
	)
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
