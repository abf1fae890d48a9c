package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/writers/smtptest"
)

// TestMain lets a test re-run this binary as the real paybatch process
// (PAYBATCH_TEST_MAIN=1), so tests can run several at once or kill one.
//
// With PAYBATCH_TEST_PAUSE_AT=POINT as well, the process runs paybatch with
// job.Deps.Checkpoint set: at POINT it prints "paused at POINT" on stderr
// and waits to be killed (kill_test.go). The paybatch binary has no such
// hook: only this test binary installs it.
func TestMain(m *testing.M) {
	if os.Getenv("PAYBATCH_TEST_RAWPACED") == "1" {
		os.Exit(rawPacedMain())
	}
	if os.Getenv("PAYBATCH_TEST_TIMERSLACK") == "1" {
		os.Exit(timerSlackMain())
	}
	if os.Getenv("PAYBATCH_TEST_MAIN") == "1" {
		if at := os.Getenv("PAYBATCH_TEST_PAUSE_AT"); at != "" {
			os.Exit(exitCode(run(context.Background(), os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
				getenv: os.Getenv, checkpoint: pauseAt(at)})))
		}
		main()
	}
	os.Exit(m.Run())
}

// pauseAt returns a checkpoint that stops the process for good at point.
func pauseAt(point string) func(string) {
	return func(p string) {
		if p == point {
			fmt.Fprintf(os.Stderr, "paused at %s\n", p)
			for {
				time.Sleep(time.Hour) // not select{}: the runtime would call that a deadlock
			}
		}
	}
}

// exampleJob copies testdata/job.yaml and the demo data into a temporary
// tree with the same layout, applying edits to the job file.
func exampleJob(t *testing.T, edits ...[2]string) (jobPath, root string) {
	t.Helper()
	root = t.TempDir()
	raw, err := os.ReadFile("../../testdata/job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	job := string(raw)
	for _, e := range edits {
		if !strings.Contains(job, e[0]) {
			t.Fatalf("job.yaml has no %q to edit", e[0])
		}
		job = strings.Replace(job, e[0], e[1], 1)
	}
	jobPath = filepath.Join(root, "testdata", "job.yaml")
	if err := os.MkdirAll(filepath.Join(root, "testdata", "demo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jobPath, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	err = fs.WalkDir(paybatch.DemoData(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(paybatch.DemoData(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, "testdata", "demo", p), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return jobPath, root
}

// demoFixtures is the demo's sandbox fixtures (paybatch.DemoData).
func demoFixtures(t *testing.T) *sandbox.Fixtures {
	t.Helper()
	f, err := fs.ReadFile(paybatch.DemoData(), "fixtures.json")
	if err != nil {
		t.Fatal(err)
	}
	fx, err := sandbox.LoadFixtures(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

func demoSandbox(t *testing.T) *sandboxtest.Server {
	t.Helper()
	fx := demoFixtures(t)
	return sandboxtest.NewServer(t, sandbox.Options{Fixtures: fx, Seed: 7, SmartRetry: srsandbox.SandboxConfig{SettleAfter: 100 * time.Millisecond}})
}

// demoEnv is the environment of a run against the demo sandbox ts that
// mails through smtp (nil: no mail settings).
func demoEnv(ts *sandboxtest.Server, smtp *smtptest.Server) func(string) string {
	smtpEnv := func(string) string { return "" }
	if smtp != nil {
		smtpEnv = smtp.Env(nil)
	}
	return func(k string) string {
		switch k {
		case "SMARTRETRY_API_KEY":
			return "sr_test_key"
		case "SMARTRETRY_BASE_URL":
			return ts.URL
		}
		return smtpEnv(k)
	}
}

// TestRunExampleConfigTwice is the nightly job as cron runs it: the
// repository's example config against the sandbox, twice. The first run
// moves every row exactly once and mails the report; the second sends
// nothing, says so, and exits 0.
func TestRunExampleConfigTwice(t *testing.T) {
	job, root := exampleJob(t, [2]string{"to: []", "to: [finance@example.com]"})
	ts := demoSandbox(t)
	smtp := smtptest.Start(t)
	getenv := demoEnv(ts, smtp)
	var out1, err1 bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", job}, env{stdout: &out1, stderr: &err1, getenv: getenv})
	if code := exitCode(err); code != exitExceptions {
		t.Fatalf("first run: exit %d (%v), want 1 (the demo data has exceptions)\n%s\n%s", code, err, out1.String(), err1.String())
	}
	ops := ts.Server.Operations()
	perID := map[string]int{}
	for _, op := range ops {
		perID[op.Reference]++
	}
	for _, id := range []string{"RF-1001", "RF-1002", "RF-1003", "RF-1004", "RF-1005", "RF-1006", "RF-1007", "RF-1008"} {
		if perID[id] != 1 {
			t.Errorf("%s executed %d times, want exactly once (ops %v)", id, perID[id], perID)
		}
	}
	report := filepath.Join(root, "paybatch-out", "report.xlsx")
	want, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	for _, f := range []string{"summary.json", "csv/matched.csv", "parquet", "paybatch.prom"} {
		if _, err := os.Stat(filepath.Join(root, "paybatch-out", f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("mails received = %d, want 1", len(msgs))
	}
	subject, attachment := readMail(t, msgs[0].Data)
	if !strings.Contains(subject, "exceptions") || !strings.Contains(subject, "matched") {
		t.Errorf("subject %q lacks the headline numbers", subject)
	}
	if !bytes.Equal(attachment, want) {
		t.Errorf("attachment (%d bytes) differs from %s (%d bytes)", len(attachment), report, len(want))
	}

	var out2, err2 bytes.Buffer
	err = run(context.Background(), []string{"run", "--config", job}, env{stdout: &out2, stderr: &err2, getenv: getenv})
	if err != nil {
		t.Fatalf("second run: %v\n%s\n%s", err, out2.String(), err2.String())
	}
	if !strings.Contains(out2.String(), "nothing new") || !strings.Contains(out2.String(), "already processed") {
		t.Errorf("second run does not say it skipped the file:\n%s", out2.String())
	}
	if n := len(ts.Server.Operations()); n != len(ops) {
		t.Errorf("second run executed %d more operations", n-len(ops))
	}
	if n := len(smtp.Messages()); n != 1 {
		t.Errorf("second run sent mail (%d messages in all)", n)
	}
}

// readMail returns a message's decoded subject and its .xlsx attachment.
func readMail(t *testing.T, raw []byte) (string, []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	var attachment []byte
	var walk func(r io.Reader, ctype string)
	walk = func(r io.Reader, ctype string) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil || !strings.HasPrefix(mt, "multipart/") {
			return
		}
		mr := multipart.NewReader(r, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			if strings.HasSuffix(p.FileName(), ".xlsx") {
				var r io.Reader = p // multipart decodes quoted-printable itself
				if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
					r = base64.NewDecoder(base64.StdEncoding, p)
				}
				if attachment, err = io.ReadAll(r); err != nil {
					t.Fatalf("attachment: %v", err)
				}
				continue
			}
			walk(p, p.Header.Get("Content-Type"))
		}
	}
	walk(msg.Body, msg.Header.Get("Content-Type"))
	return subject, attachment
}

// TestRunTwoProcessesOneSubmits starts two real paybatch processes on the
// same journal at once: the second must find the lock, exit 4 and send
// nothing.
func TestRunTwoProcessesOneSubmits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// A slow rate keeps the first run busy while the second starts.
	job, _ := exampleJob(t, [2]string{"rate: 50/1s", "rate: 2/1s"}) // 8 rows: ~4 s
	ts := demoSandbox(t)
	start := func() (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
		cmd := exec.Command(os.Args[0], "run", "--config", job)
		cmd.Env = append(os.Environ(), "PAYBATCH_TEST_MAIN=1", "SMARTRETRY_API_KEY=sr_test_key", "SMARTRETRY_BASE_URL="+ts.URL)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(stdout), &stderr
	}
	first, out1, _ := start()
	var firstOut strings.Builder
	for out1.Scan() { // wait until the first run is submitting
		firstOut.WriteString(out1.Text() + "\n")
		if strings.HasPrefix(out1.Text(), "submitting") {
			break
		}
	}
	second, out2, stderr2 := start()
	var secondOut strings.Builder
	for out2.Scan() {
		secondOut.WriteString(out2.Text() + "\n")
	}
	err2 := second.Wait()
	for out1.Scan() {
		firstOut.WriteString(out1.Text() + "\n")
	}
	err1 := first.Wait()

	var ee *exec.ExitError
	if !errors.As(err2, &ee) || ee.ExitCode() != exitLocked {
		t.Errorf("second run: %v, want exit 4\nstdout:\n%s\nstderr:\n%s", err2, secondOut.String(), stderr2.String())
	}
	if !strings.Contains(stderr2.String(), "another paybatch run") {
		t.Errorf("second run does not say why it stopped:\n%s", stderr2.String())
	}
	if strings.Contains(secondOut.String(), "submitting") {
		t.Errorf("second run submitted:\n%s", secondOut.String())
	}
	if !errors.As(err1, &ee) || ee.ExitCode() != exitExceptions {
		t.Errorf("first run: %v, want exit 1 (demo exceptions)\n%s", err1, firstOut.String())
	}
	perID := map[string]int{}
	for _, op := range ts.Server.Operations() {
		perID[op.Reference]++
	}
	if len(perID) != 8 {
		t.Errorf("executed ids = %v, want the 8 refunds", perID)
	}
	for id, n := range perID {
		if n != 1 {
			t.Errorf("%s executed %d times", id, n)
		}
	}
}
