package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	"github.com/paybatch/paybatch/pipeline/sandbox/sim"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// sharedWorkers are the three processes' worth of work on one journal in
// TestServeAndScheduledJobsShareOnePostgresJournal: each its own rows
// (merchant_transaction_id prefix) and its own API key (credential, so
// its own lease and rate limit).
var sharedWorkers = []struct{ prefix, key string }{
	{"web", "sr_web_key"},     // a batch uploaded, approved and sent through `serve`
	{"sched", "sr_sched_key"}, // a job file `serve --schedule` runs
	{"cron", "sr_cron_key"},   // the same kind of job file run by `paybatch run`, as cron would
}

// #20's "the web server and a scheduled job share one Postgres journal",
// through the real CLI against the real sandbox over HTTP: `paybatch serve
// --journal postgres://…` sends a batch uploaded and approved over HTTP
// (users made by `paybatch user add --journal`), while a job it runs on a
// schedule and a `paybatch run` process work other rows of the same
// journal. `status` and `history` answer while they write; all three
// finish; the web batch's report (reconciled from the PostgreSQL journal)
// downloads; and /_sandbox/operations shows every row executed exactly
// once, with faults (5xx, lost answers) injected.
func TestServeAndScheduledJobsShareOnePostgresJournal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const n = 60 // rows per worker
	pgURL := pgtest.URL(t)
	dir := t.TempDir()

	fx := &sandbox.Fixtures{}
	keys := map[string][]string{}
	for _, w := range sharedWorkers {
		keys[w.key] = []string{srsandbox.TestTerminal}
		for i := range n {
			fx.SmartRetry.Transactions = append(fx.SmartRetry.Transactions, srsandbox.TransactionFixture{
				TransactionID: fmt.Sprintf("TX%s%05d", strings.ToUpper(w.prefix[:1]), i), OrderID: fmt.Sprintf("OR%s%05d", strings.ToUpper(w.prefix[:1]), i),
				Terminal: srsandbox.TestTerminal, Type: smartretry.TypeSale, Amount: "100.00", Currency: "USD", Status: smartretry.StatusApproved})
		}
	}
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 3, Fixtures: fx, Faults: "5xx=0.1,lost=0.05",
		SmartRetry: srsandbox.SandboxConfig{SettleAfter: 200 * time.Millisecond, Keys: keys}})

	files := map[string][]byte{}
	for _, w := range sharedWorkers {
		var batch, ledger strings.Builder
		batch.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
		ledger.WriteString("merchant_transaction_id,amount,currency,type,date,expected_status\n")
		for i := range n {
			P := strings.ToUpper(w.prefix[:1])
			fmt.Fprintf(&batch, "%s,TX%s%05d,OR%s%05d,%s-%05d,10.00,USD\n", srsandbox.TestTerminal, P, i, P, i, w.prefix, i)
			fmt.Fprintf(&ledger, "%s-%05d,10.00,USD,refund,2026-11-21,succeeded\n", w.prefix, i)
		}
		files[w.prefix] = []byte(batch.String())
		for name, body := range map[string]string{w.prefix + ".csv": batch.String(), w.prefix + "-ledger.csv": ledger.String()} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if w.prefix == "web" {
			continue
		}
		jobFile := fmt.Sprintf(`provider: smartretry
kind: refund
inputs: [%[1]s.csv]
ledger: %[1]s-ledger.csv
outputs: %[1]s-out
journal: %[2]s
poll_deadline: 60s
limits:
  rate: 20/1s
credentials:
  secret_env: %[3]s
  base_url_env: SMARTRETRY_BASE_URL
`, w.prefix, pgURL, strings.ToUpper(w.prefix)+"_SMARTRETRY_KEY")
		if err := os.WriteFile(filepath.Join(dir, w.prefix+".yaml"), []byte(jobFile), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	const password = "a long enough password"
	env := append(os.Environ(), "PAYBATCH_TEST_MAIN=1", "SMARTRETRY_BASE_URL="+ts.URL, "PAYBATCH_PASSWORD="+password,
		"SMARTRETRY_API_KEY=sr_web_key", "SCHED_SMARTRETRY_KEY=sr_sched_key", "CRON_SMARTRETRY_KEY=sr_cron_key")
	for _, u := range [][2]string{{"uma", "uploader"}, {"alex", "approver"}} {
		cmd := exec.Command(os.Args[0], "user", "add", u[0], "--role", u[1], "--journal", pgURL)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add %s --journal postgres://…: %v\n%s", u[0], err, out)
		}
	}

	// The server: its journal and its scheduled job's on PostgreSQL.
	srv := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--journal", pgURL,
		"--rate", "20/1s", "--poll-deadline", "60s", "--ledger", filepath.Join(dir, "web-ledger.csv"),
		"--schedule", "@every 1s="+filepath.Join(dir, "sched.yaml"))
	srv.Env = env
	var srvErr bytes.Buffer
	srv.Stderr = &srvErr
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("serve's log:\n%s", srvErr.String())
		}
	})
	listen := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+) \(data in .*, journal postgres://`)
	base := ""
	sc := bufio.NewScanner(out)
	for base == "" && sc.Scan() {
		if m := listen.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("serve did not start on the PostgreSQL journal\n%s", srvErr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()

	// `paybatch run` as cron would start it, at the same time.
	cron := exec.Command(os.Args[0], "run", "--config", filepath.Join(dir, "cron.yaml"))
	cron.Env = env
	var cronOut bytes.Buffer
	cron.Stdout, cron.Stderr = &cronOut, &cronOut
	if err := cron.Start(); err != nil {
		t.Fatal(err)
	}
	cronDone := make(chan error, 1)
	go func() { cronDone <- cron.Wait() }()
	t.Cleanup(func() { _ = cron.Process.Kill() })

	// The web batch: uploaded by uma, approved by alex, over HTTP.
	signIn := func(name string) *http.Client { return signInAs(t, base, name, password) }
	get := func(c *http.Client, u string) (int, string) { return getPage(t, c, u) }
	uma := signIn("uma")
	pr, pw := io.Pipe()
	res, err := uma.Post(base+"/upload", newMultipartForm(pw, "refund", "web.csv", files["web"]), pr)
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

	ops := func() []sim.Operation {
		res, err := http.Get(ts.URL + "/_sandbox/operations")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var o []sim.Operation
		if err := json.NewDecoder(res.Body).Decode(&o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	sending := func() map[string]int { // executed operations per worker
		per := map[string]int{}
		for _, op := range ops() {
			p, _, _ := strings.Cut(op.Reference, "-")
			per[p]++
		}
		return per
	}

	// While they write: status and history answer from the same journal.
	deadline := time.Now().Add(60 * time.Second)
	for {
		per := sending()
		if per["web"] > 0 && (per["sched"] > 0 || per["cron"] > 0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server and the jobs never sent at the same time: %v\n%s", per, cronOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	vars := map[string]string{job.JournalURLVar: pgURL}
	start := time.Now()
	sout, serr, code := runCLI(t, vars, "status", "--poll-deadline", "0")
	if code == exitLocked || code == exitUsage || !strings.Contains(sout, "refund") {
		t.Errorf("status while three processes write: exit %d\n%s\n%s", code, sout, serr)
	}
	hout, herr, code := runCLI(t, vars, "history", "--json")
	var runs []job.PastRun
	if code != exitOK || json.Unmarshal([]byte(hout), &runs) != nil || len(runs) == 0 {
		t.Errorf("history while three processes write: exit %d, want the runs so far\n%s\n%s", code, hout, herr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("status and history took %v while the journal was written", d)
	}
	if per := sending(); per["web"] == n && per["sched"] == n && per["cron"] == n {
		t.Log("every row was already sent when status and history ran")
	}

	// All three finish.
	select {
	case err := <-cronDone:
		if err != nil {
			t.Fatalf("paybatch run: %v\n%s", err, cronOut.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("paybatch run did not finish\n%s", cronOut.String())
	}
	deadline = time.Now().Add(3 * time.Minute)
	for {
		_, page := get(alex, base+"/batches/1")
		hout, _, _ = runCLI(t, vars, "history", "--json")
		runs = nil
		_ = json.Unmarshal([]byte(hout), &runs)
		finished := map[string]bool{}
		for _, r := range runs {
			for _, in := range r.Inputs {
				if r.State == "finished" {
					finished[strings.TrimSuffix(filepath.Base(in.Path), ".csv")] = true
				}
			}
		}
		if strings.Contains(page, "state-done") && finished["sched"] && finished["cron"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not finished: web batch page state-done %v, finished runs %v\n%s", strings.Contains(page, "state-done"), finished, hout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The web batch's report, reconciled from the PostgreSQL journal.
	if code, body := get(alex, base+"/batches/1/report.xlsx"); code != http.StatusOK || !strings.HasPrefix(body, "PK") {
		t.Errorf("report.xlsx of the web batch: %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "sched-out", "report.xlsx")); err != nil {
		t.Errorf("the scheduled job's report: %v", err)
	}

	seen := map[string]int{}
	for _, op := range ops() {
		seen[op.Reference]++
	}
	for _, w := range sharedWorkers {
		for i := range n {
			if id := fmt.Sprintf("%s-%05d", w.prefix, i); seen[id] != 1 {
				t.Errorf("%s executed %d times, want exactly once", id, seen[id])
			}
		}
	}
	if len(seen) != 3*n {
		t.Errorf("%d operations executed, want %d", len(seen), 3*n)
	}
}
