package main

import (
	"bufio"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeKilledMidSendResumesExactlyOnce: the server is SIGKILLed while
// it sends an approved batch; started again on the same data directory it
// resumes the batch, and the sandbox executed every row exactly once
// (some requests are lost after the work is done: the replay case).
func TestServeKilledMidSendResumesExactlyOnce(t *testing.T) {
	const n = 120
	ts := cliSandbox(t, n)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	csv := refundCSV(t, dir, n, nil)
	env := append(os.Environ(), "PAYBATCH_TEST_MAIN=1", "SMARTRETRY_API_KEY=sr_test_key", "SMARTRETRY_BASE_URL="+ts.URL,
		"PAYBATCH_PASSWORD=a long enough password")
	for _, u := range [][2]string{{"uma", "uploader"}, {"alex", "approver"}} {
		cmd := exec.Command(os.Args[0], "user", "add", u[0], "--role", u[1], "--data-dir", data)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add %s: %v\n%s", u[0], err, out)
		}
	}
	listen := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	start := func() (*exec.Cmd, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--rate", "40/1s")
		cmd.Env = env
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listen.FindStringSubmatch(sc.Text()); m != nil {
				go func() { _, _ = io.Copy(io.Discard, out) }()
				return cmd, m[1]
			}
		}
		t.Fatal("serve did not start")
		return nil, ""
	}
	client := func(base, name string) *http.Client { return signInAs(t, base, name, "a long enough password") }
	page := func(c *http.Client, u string) string { _, body := getPage(t, c, u); return body }

	first, base := start()
	uma := client(base, "uma")
	body, err := os.ReadFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	mw := newMultipartForm(pw, "refund", "refunds.csv", body)
	res, err := uma.Post(base+"/upload", mw, pr)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !strings.HasSuffix(res.Request.URL.Path, "/batches/1") {
		t.Fatalf("upload ended on %s", res.Request.URL)
	}
	if res, err = uma.PostForm(base+"/batches/1/submit", nil); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	alex := client(base, "alex")
	if res, err = alex.PostForm(base+"/batches/1/approve", url.Values{"comment": {"ok"}}); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	deadline := time.Now().Add(30 * time.Second)
	for len(ts.Server.Operations()) < n/4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d operations before the kill", len(ts.Server.Operations()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	before := len(ts.Server.Operations())
	if before >= n {
		t.Fatalf("all %d rows executed before the kill: the test proves nothing", before)
	}

	_, base = start()
	vic := client(base, "alex")
	deadline = time.Now().Add(90 * time.Second)
	for {
		p := page(vic, base+"/batches/1")
		if strings.Contains(p, "state-done") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not done after the restart:\n%s", p)
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, op := range ts.Server.Operations() {
		seen[op.Reference]++
	}
	for i := range n {
		id := fmt.Sprintf("cli-%05d", i)
		if seen[id] != 1 {
			t.Errorf("%s executed %d times", id, seen[id])
		}
	}
	if p := page(vic, base+"/batches/1"); !strings.Contains(p, "sending resumed") {
		t.Errorf("the audit trail does not say the send resumed")
	}
	t.Logf("%d of %d rows executed before the SIGKILL; all %d exactly once after the restart", before, n, n)
}

// newMultipartForm streams the upload form (kind, file) into w and returns
// its content type.
func newMultipartForm(w *io.PipeWriter, kind, name string, content []byte) string {
	mw := multipart.NewWriter(w)
	go func() {
		_ = mw.WriteField("kind", kind)
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write(content)
		w.CloseWithError(mw.Close())
	}()
	return mw.FormDataContentType()
}
