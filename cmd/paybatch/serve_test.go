package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/pipelinetest"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// startServe runs `paybatch serve args…` (startListening).
func startServe(t *testing.T, vars map[string]string, args ...string) (string, context.CancelFunc, <-chan error, *pipelinetest.SyncBuffer) {
	t.Helper()
	return startListening(t, vars, "serve", args...)
}

func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	_, stderr, code := runCLI(t, nil, "serve", "--addr", "0.0.0.0:0", "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(stderr, "not a loopback address") || !strings.Contains(stderr, "--tls-cert") {
		t.Fatalf("code %d: %s", code, stderr)
	}
	_, stderr, code = runCLI(t, nil, "serve", "--tls-cert", "x.pem", "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(stderr, "go together") {
		t.Fatalf("cert without key: code %d: %s", code, stderr)
	}
}

// TestUserCommand: the first admin exists without the UI; passwords never
// come from flags; the server holding the journal is said so.
func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	pw := map[string]string{envPassword: "a long enough password"}
	out, stderr, code := runCLI(t, pw, "user", "add", "ada", "--role", "admin", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "user ada added as admin") {
		t.Fatalf("add: %d %s %s", code, out, stderr)
	}
	if _, stderr, code = runCLI(t, pw, "user", "add", "ada", "--role", "viewer", "--data-dir", dir); code != exitUsage || !strings.Contains(stderr, "already exists") {
		t.Fatalf("duplicate: %d %s", code, stderr)
	}
	if _, stderr, code = runCLI(t, nil, "user", "add", "bob", "--role", "viewer", "--password", "hunter2hunter2", "--data-dir", dir); code != exitUsage || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "never taken from flags") {
		t.Fatalf("--password flag: %d %s", code, stderr)
	}
	if _, stderr, code = runCLI(t, map[string]string{envPassword: "short"}, "user", "add", "bob", "--role", "viewer", "--data-dir", dir); code != exitUsage || !strings.Contains(stderr, "at least 12") {
		t.Fatalf("short password: %d %s", code, stderr)
	}
	if _, stderr, code = runCLI(t, pw, "user", "add", "bob", "--role", "boss", "--data-dir", dir); code != exitUsage || !strings.Contains(stderr, "unknown role") {
		t.Fatalf("bad role: %d %s", code, stderr)
	}
	var o, e pipelinetest.SyncBuffer
	err := run(context.Background(), []string{"user", "reset-password", "ada", "--data-dir", dir},
		env{stdin: strings.NewReader("the new password here\n"), stdout: &o, stderr: &e})
	if err != nil || !strings.Contains(o.String(), "password reset") {
		t.Fatalf("reset-password from stdin: %v %s", err, e.String())
	}

	// The new password signs in; the server holds the journal meanwhile.
	base, _, _, _ := startServe(t, nil, "--data-dir", dir)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.PostForm(base+"/login", url.Values{"name": {"ada"}, "password": {"the new password here"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in with the reset password: %d", res.StatusCode)
	}
	if _, stderr, code = runCLI(t, nil, "user", "disable", "ada", "--data-dir", dir); code != exitLocked || !strings.Contains(stderr, "admin page") {
		t.Fatalf("while the server runs: %d %s", code, stderr)
	}
}

// TestServeDemo: `serve --demo` starts on a fresh clone with the sandbox,
// demo users and the demo batch awaiting approval; a restart on the same
// data directory does not add the batch again.
func TestServeDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, stop, done, out := startServe(t, nil, "--demo", "--data-dir", dir)
	if !strings.Contains(out.String(), "uma (uploader)") || !strings.Contains(out.String(), demoPassword) {
		t.Fatalf("demo banner: %s", out.String())
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.PostForm(base+"/login", url.Values{"name": {"alex"}, "password": {demoPassword}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "awaiting approval") || !strings.Contains(string(body), "refunds.csv") {
		t.Fatalf("home page after sign-in:\n%s", body)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve stopped with %v", err)
	}
	base, _, _, _ = startServe(t, nil, "--demo", "--data-dir", dir)
	res, err = c.PostForm(base+"/login", url.Values{"name": {"alex"}, "password": {demoPassword}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if n := strings.Count(string(body), `href="/batches/`); n != 1 {
		t.Fatalf("%d batches after a restart, want the one demo batch", n)
	}
}

// TestStatusHistoryPointToServer: while `paybatch serve` holds its
// journal, status and history are refused the lock and say where to look:
// the server's address.
func TestStatusHistoryPointToServer(t *testing.T) {
	data := t.TempDir()
	base, _, _, _ := startServe(t, nil, "--demo", "--data-dir", data)
	jp := filepath.Join(data, "journal.duckdb")
	out, _, _ := runCLI(t, nil, "status", "--journal", jp)
	if !strings.Contains(out, "paybatch serve") || !strings.Contains(out, base) {
		t.Errorf("status of a journal the server holds does not point to %s:\n%s", base, out)
	}
	_, stderr, code := runCLI(t, nil, "history", "--journal", jp)
	if code == 0 || !strings.Contains(stderr, base) {
		t.Errorf("history of a journal the server holds: code %d, does not point to %s:\n%s", code, base, stderr)
	}
}

// TestServeRunsScheduledJobs: `serve --schedule` runs a job file through
// job.Run at its cron times, inside the server: the example job's rows are
// each executed once however often the schedule fires (the later runs find
// nothing new), and its report is written. A schedule that cannot be read
// stops the server at start.
func TestServeRunsScheduledJobs(t *testing.T) {
	jobPath, root := exampleJob(t)
	ts := demoSandbox(t)
	vars := map[string]string{"SMARTRETRY_API_KEY": "sr_test_key", "SMARTRETRY_BASE_URL": ts.URL}
	data := t.TempDir()
	_, stderr, code := runCLI(t, vars, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--schedule", "every night="+jobPath)
	if code != exitUsage || !strings.Contains(stderr, "--schedule") {
		t.Fatalf("a bad cron spec: code %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, map[string]string{envPassword: "a long enough password"}, "user", "add", "ada", "--role", "admin", "--data-dir", data); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	base, _, _, _ := startServe(t, vars, "--data-dir", data, "--schedule", "@every 1s="+jobPath)
	report := filepath.Join(root, "paybatch-out", "report.xlsx")
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(report); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduled job wrote no report")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The admin page says what runs when.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if res, err := c.PostForm(base+"/login", url.Values{"name": {"ada"}, "password": {"a long enough password"}}); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %v %v", err, res)
	}
	res, err := c.Get(base + "/admin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `id="schedule"`) || !strings.Contains(string(body), "@every 1s") {
		t.Errorf("the admin page does not show the schedule:\n%s", body)
	}
	time.Sleep(3 * time.Second) // a few more times: nothing new to send
	if n := len(ts.Server.Operations()); n != 8 {
		t.Fatalf("%d operations executed, want each of the 8 rows once", n)
	}
}

// TestServeRunsScheduledJobOnItsOwnJournal: a scheduled job whose journal
// is the server's own DuckDB file (which the server holds: the job could
// never open it) runs on the journal the server holds, in the same
// process, while the server sends an approved batch through it: both
// finish, each row is executed exactly once, and the job's report and the
// batch's are written. (It was refused at start before.)
func TestServeRunsScheduledJobOnItsOwnJournal(t *testing.T) {
	const n = 40
	fx := demoFixtures(t)
	for i := range n {
		fx.SmartRetry.Transactions = append(fx.SmartRetry.Transactions, srsandbox.TransactionFixture{
			TransactionID: fmt.Sprintf("TXW%05d", i), OrderID: fmt.Sprintf("ORW%05d", i), Terminal: srsandbox.TestTerminal,
			Type: smartretry.TypeSale, Amount: "100.00", Currency: "USD", Status: smartretry.StatusApproved})
	}
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 5, Fixtures: fx, Faults: "5xx=0.1,lost=0.05",
		SmartRetry: srsandbox.SandboxConfig{SettleAfter: 100 * time.Millisecond}})
	data := t.TempDir()
	jobPath, root := exampleJob(t, [2]string{"# journal: ../paybatch-out/journal.duckdb", "journal: " + filepath.Join(data, "journal.duckdb")})
	var batch, ledger strings.Builder
	batch.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
	ledger.WriteString("merchant_transaction_id,amount,currency,type,date,expected_status\n")
	for i := range n {
		fmt.Fprintf(&batch, "%s,TXW%05d,ORW%05d,web-%05d,10.00,USD\n", srsandbox.TestTerminal, i, i, i)
		fmt.Fprintf(&ledger, "web-%05d,10.00,USD,refund,2026-11-21,succeeded\n", i)
	}
	ledgerPath := filepath.Join(root, "web-ledger.csv")
	writeFile(t, ledgerPath, ledger.String())
	vars := map[string]string{"SMARTRETRY_API_KEY": "sr_test_key", "SMARTRETRY_BASE_URL": ts.URL, envPassword: "a long enough password"}
	for _, u := range [][2]string{{"uma", "uploader"}, {"alex", "approver"}} {
		if _, stderr, code := runCLI(t, vars, "user", "add", u[0], "--role", u[1], "--data-dir", data); code != 0 {
			t.Fatalf("user add: %s", stderr)
		}
	}
	base, _, _, out := startServe(t, vars, "--data-dir", data, "--rate", "20/1s", "--poll-deadline", "60s", "--ledger", ledgerPath,
		"--schedule", "@every 1s="+jobPath)
	signIn := func(name string) *http.Client { return signInAs(t, base, name, "a long enough password") }
	get := func(c *http.Client, u string) (int, string) { return getPage(t, c, u) }
	uma := signIn("uma")
	pr, pw := io.Pipe()
	res, err := uma.Post(base+"/upload", newMultipartForm(pw, "refund", "web.csv", []byte(batch.String())), pr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !strings.HasSuffix(res.Request.URL.Path, "/batches/1") {
		t.Fatalf("upload ended on %s (%d)", res.Request.URL, res.StatusCode)
	}
	if res, err = uma.PostForm(base+"/batches/1/submit", nil); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	alex := signIn("alex")
	if res, err = alex.PostForm(base+"/batches/1/approve", url.Values{"comment": {"ok"}}); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	report := filepath.Join(root, "paybatch-out", "report.xlsx")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		_, page := get(alex, base+"/batches/1")
		_, rerr := os.Stat(report)
		if strings.Contains(page, "state-done") && rerr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not finished: batch done %v, job report %v\n%s", strings.Contains(page, "state-done"), rerr, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(out.String(), "scheduled job failed") {
		t.Errorf("the scheduled job failed:\n%s", out.String())
	}
	if code, body := get(alex, base+"/batches/1/report.xlsx"); code != http.StatusOK || !strings.HasPrefix(body, "PK") {
		t.Errorf("report.xlsx of the web batch: %d", code)
	}
	time.Sleep(2 * time.Second) // the job's later times: nothing new to send
	seen := map[string]int{}
	for _, op := range ts.Server.Operations() {
		seen[op.Reference]++
	}
	for i := range n {
		if id := fmt.Sprintf("web-%05d", i); seen[id] != 1 {
			t.Errorf("%s executed %d times, want once", id, seen[id])
		}
	}
	for i := 1; i <= 8; i++ {
		if id := fmt.Sprintf("RF-100%d", i); seen[id] != 1 {
			t.Errorf("%s (the scheduled job's) executed %d times, want once", id, seen[id])
		}
	}
}

// signInAs signs name in to the server at base and returns a client that
// carries the session cookie.
func signInAs(t *testing.T, base, name, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.PostForm(base+"/login", url.Values{"name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return c
}

// getPage fetches u with c and returns the status code and the body.
func getPage(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
