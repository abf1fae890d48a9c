package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var serveRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// startServe runs `paybatch serve args…` as main does and returns its base
// URL, a stop function and the command's result.
func startServe(t *testing.T, vars map[string]string, args ...string) (string, context.CancelFunc, <-chan error, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), env{stdout: out, stderr: io.Discard,
			getenv: func(k string) string { return vars[k] }})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := serveRE.FindStringSubmatch(out.String()); m != nil {
			t.Cleanup(func() {
				cancel()
				<-finished // the journal is closed before the temp dir goes
			})
			return m[1], cancel, done, out
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited early: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not start:\n%s", out.String())
	return "", nil, nil, nil
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
	var o, e syncBuffer
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
// nothing new), and its report is written. A schedule that cannot be read,
// or a job on the server's own journal, stops the server at start.
func TestServeRunsScheduledJobs(t *testing.T) {
	jobPath, root := exampleJob(t)
	ts := demoSandbox(t)
	vars := map[string]string{"SMARTRETRY_API_KEY": "sr_test_key", "SMARTRETRY_BASE_URL": ts.URL}
	data := t.TempDir()
	_, stderr, code := runCLI(t, vars, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--schedule", "every night="+jobPath)
	if code != exitUsage || !strings.Contains(stderr, "--schedule") {
		t.Fatalf("a bad cron spec: code %d: %s", code, stderr)
	}
	own := filepath.Join(root, "own.yaml")
	raw, _ := os.ReadFile(jobPath)
	if err := os.WriteFile(own, []byte(strings.Replace(string(raw), "# journal: ../paybatch-out/journal.duckdb", "journal: "+filepath.Join(data, "journal.duckdb"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, vars, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--schedule", "@daily="+own); code != exitUsage || !strings.Contains(stderr, "server's own") {
		t.Fatalf("a job on the server's journal: code %d: %s", code, stderr)
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
