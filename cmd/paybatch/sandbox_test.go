package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/pipelinetest"
)

var listenRE = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// startListening runs `paybatch name --addr 127.0.0.1:0 args…` as main does,
// with getenv reading vars, until it says where it listens, and returns its
// base URL, a stop function, the command's result and its output. The
// test's cleanup stops it and waits for it to return (a journal it holds is
// closed before the temp dir goes).
func startListening(t *testing.T, vars map[string]string, name string, args ...string) (string, context.CancelFunc, <-chan error, *pipelinetest.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &pipelinetest.SyncBuffer{}
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- run(ctx, append([]string{name, "--addr", "127.0.0.1:0"}, args...), env{stdout: out, stderr: io.Discard,
			getenv: func(k string) string { return vars[k] }})
	}()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			t.Cleanup(func() {
				cancel()
				<-finished
			})
			return m[1], cancel, done, out
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("%s exited early: %v\n%s", name, err, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("%s did not start:\n%s", name, out.String())
	return "", nil, nil, nil
}

// startSandboxCmd runs `paybatch sandbox args…` (startListening).
func startSandboxCmd(t *testing.T, args ...string) (string, context.CancelFunc, <-chan error, *pipelinetest.SyncBuffer) {
	t.Helper()
	return startListening(t, nil, "sandbox", args...)
}

func TestSandboxCommandServesAndStops(t *testing.T) {
	dir := t.TempDir()
	fx := filepath.Join(dir, "fx.json")
	os.WriteFile(fx, []byte(`{"smartretry":{"transactions":[{"transaction_id":"TXF00001","order_id":"ORF00001","terminal":"ABC123","type":"sale","amount":"10.00","currency":"USD"}]}}`), 0o600)
	base, stop, done, out := startSandboxCmd(t, "--fixtures", fx, "--smartretry-payments-limit", "2/1m", "--smartretry-settle-delay", "0",
		"--smarterpay-limit", "1/1m", "--smarterpay-submit-delay", "0", "--smarterpay-settle-delay", "0")
	for _, want := range []string{"sr_test_key", "ABC123, TERM01", "sp_test_token", "/_sandbox/operations"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}
	post := func(key string) *http.Response {
		req, _ := http.NewRequest("POST", base+"/v1/payments/refund/ABC123",
			strings.NewReader(`{"transaction_reference_id":"TXF00001","order_reference_id":"ORF00001","amount":1.00}`))
		req.Header.Set("x-api-key", "sr_test_key")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post("a"); r.StatusCode != 200 {
		t.Fatalf("refund: %d", r.StatusCode)
	}
	post("b")
	if r := post("c"); r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("limit flag not applied: %d", r.StatusCode)
	}
	// SmarterPay is mounted, its limit flag applied (1 per minute).
	for i, want := range []int{200, 429} {
		req, _ := http.NewRequest("GET", base+"/service.svc/mandate", nil)
		req.Header.Set("Authorization", "Bearer sp_test_token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("smarterpay request %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	resp, err := http.Get(base + "/v1/payments/status/ABC123/TXF00001")
	if err == nil {
		resp.Body.Close()
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("clean shutdown returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox did not stop on cancel")
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Fatalf("no stop message:\n%s", out.String())
	}
}

func TestSandboxCommandRefusesBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"sandbox", "--addr", "0.0.0.0:0"}, "not a loopback"},
		{[]string{"sandbox", "--addr", ":0"}, "not a loopback"},
		{[]string{"sandbox", "--addr", "nonsense"}, "HOST:PORT"},
		{[]string{"sandbox", "--faults", "boom=1"}, "unknown fault"},
		{[]string{"sandbox", "--smartretry-payments-limit", "fast"}, "--smartretry-payments-limit"},
		{[]string{"sandbox", "--smartretry-settle-delay", "-1s"}, "negative"},
		{[]string{"sandbox", "--smarterpay-limit", "10"}, "--smarterpay-limit"},
		{[]string{"sandbox", "--smarterpay-settle-delay", "-2s"}, "negative"},
		{[]string{"sandbox", "--fixtures", "/does/not/exist.json"}, "--fixtures"},
	}
	for _, tt := range tests {
		err := run(context.Background(), tt.args, env{stdout: io.Discard, stderr: io.Discard})
		if exitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v (code %d), want usage error mentioning %q", tt.args, err, exitCode(err), tt.want)
		}
	}
}

func TestSandboxHelpListsCredentials(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"sandbox", "--help"}, env{stdout: &out, stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sr_test_key", "ABC123, TERM01", "sp_test_token", "--faults", "--allow-remote", "Examples:", "4000000000000002", "--smarterpay-limit", "--smarterpay-submit-delay", "--smarterpay-settle-delay"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}
