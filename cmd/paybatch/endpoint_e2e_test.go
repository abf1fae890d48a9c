package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	spsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smarterpay"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// TestWrongEndpointIsAConfigErrorNotAnOutcome reproduces issue #16 finding
// 1 through the CLI against the sandbox over HTTP: a SmarterPay base URL
// without /service.svc made every row a final "rejected", and the corrected
// URL then found "0 new, 4 already finished". Now the wrong URL stops the
// run as a configuration error that names the variable, nothing is sent or
// closed, and the corrected URL sends the same rows from the same journal.
func TestWrongEndpointIsAConfigErrorNotAnOutcome(t *testing.T) {
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 1,
		SmarterPay: spsandbox.SandboxConfig{SubmitAfter: 50 * time.Millisecond, SettleAfter: 50 * time.Millisecond}})
	dir := t.TempDir()
	day := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	batch := filepath.Join(dir, "dd.csv")
	writeFile(t, batch, "Mandate,Amount,Collection Date,Reference,Description\n"+
		"M01SANDBOX000000001,25.32,"+day+",EP-0001,one\n"+
		"M01SANDBOX000000001,10.00,"+day+",EP-0002,two\n"+
		"M01SANDBOX000000002,99.00,"+day+",EP-0003,three\n"+
		"M01SANDBOX000000003,12.00,"+day+",EP-0004,four\n")
	journal := filepath.Join(dir, "journal.duckdb")
	submit := func(base string) (string, string, int) {
		vars := map[string]string{"SMARTERPAY_TOKEN": spsandbox.DefaultToken, "SMARTERPAY_BASE_URL": base}
		return runCLI(t, vars, "submit", "--kind", "dd-payment", "--journal", journal, "--poll-deadline", "20s", batch)
	}

	for _, tc := range []struct{ name, base, want string }{
		{"base URL without /service.svc", ts.URL, "must end in /service.svc"},
		{"https to the plain-http sandbox", strings.Replace(ts.URL, "http://", "https://", 1) + "/service.svc", "does not speak TLS"},
		{"host that does not resolve", "https://paybatch-test.invalid/service.svc", "cannot be resolved"},
		{"nothing listening", "http://127.0.0.1:1/service.svc", "nothing is listening"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := submit(tc.base)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d (configuration error)\n%s\n%s", code, exitUsage, out, errs)
			}
			for _, w := range []string{"wrong provider endpoint", "SMARTERPAY_BASE_URL", tc.want} {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(out+errs, "check the rows listed") {
				t.Errorf("a configuration error is not a resumable run:\n%s\n%s", out, errs)
			}
			if n := len(ts.Server.Operations()); n != 0 {
				t.Fatalf("%d operations executed under a wrong URL", n)
			}
		})
	}

	out, errs, code := submit(ts.URL + "/service.svc")
	if code != exitOK {
		t.Fatalf("with the right URL: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "0 already finished") || !strings.Contains(out, "final     4") {
		t.Errorf("the rows were closed by the wrong URL:\n%s", out)
	}
	seen := map[string]int{}
	for _, op := range ts.Server.Operations() {
		seen[op.Reference]++
	}
	if len(seen) != 4 {
		t.Fatalf("executed %v, want each of the 4 rows once", seen)
	}
	for ref, n := range seen {
		if n != 1 {
			t.Errorf("%s executed %d times", ref, n)
		}
	}
}

// TestSmartRetryWrongEndpoint: SmartRetry's base URL pointed at the
// SmarterPay path gets 404s without a SmartRetry problem body — a
// configuration error naming SMARTRETRY_BASE_URL, not 3 rejected refunds.
func TestSmartRetryWrongEndpoint(t *testing.T) {
	const n = 3
	ts := cliSandbox(t, n)
	file := refundCSV(t, t.TempDir(), n, nil)
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL + "/service.svc"}
	out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", file)
	if code != exitUsage || !strings.Contains(errs, envSmartRetryURL) || !strings.Contains(errs, "is not the SmartRetry API") {
		t.Fatalf("exit %d, want %d naming %s\n%s\n%s", code, exitUsage, envSmartRetryURL, out, errs)
	}
	vars[envSmartRetryURL] = ts.URL
	if out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--poll-deadline", "20s", file); code != exitOK && code != exitExceptions {
		t.Fatalf("with the right URL: exit %d\n%s\n%s", code, out, errs)
	}
	if got := len(ts.Server.Operations()); got != n {
		t.Fatalf("%d operations executed, want %d", got, n)
	}
}

// TestProbes: `config check` and `submit --dry-run` check the endpoint and
// the credential with a call that moves no money, and say what is wrong.
func TestProbes(t *testing.T) {
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 1})
	dir := t.TempDir()
	day := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	batch := filepath.Join(dir, "dd.csv")
	writeFile(t, batch, "Mandate,Amount,Collection Date,Reference,Description\nM01SANDBOX000000001,25.32,"+day+",PR-0001,one\n")
	jobFile := filepath.Join(dir, "job.yaml")
	writeFile(t, jobFile, "kind: dd-payment\ninputs: [dd.csv]\nledger: dd.csv\noutputs: out\n")
	for _, tc := range []struct {
		name, token, base string
		code              int
		want              []string
	}{
		{"right", spsandbox.DefaultToken, ts.URL + "/service.svc", exitOK, []string{": ok, $SMARTERPAY_TOKEN accepted"}},
		{"no /service.svc", spsandbox.DefaultToken, ts.URL, exitUsage, []string{"FAILED", "must end in /service.svc", "SMARTERPAY_BASE_URL"}},
		{"https to the sandbox", spsandbox.DefaultToken, strings.Replace(ts.URL, "http:", "https:", 1) + "/service.svc", exitUsage, []string{"does not speak TLS"}},
		{"wrong token", "sp_wrong", ts.URL + "/service.svc", exitUsage, []string{"the credential in SMARTERPAY_TOKEN was refused", "401"}},
		{"expired token", spsandbox.DefaultExpiredToken, ts.URL + "/service.svc", exitUsage, []string{"SMARTERPAY_TOKEN was refused", "498"}},
		{"no token", "", ts.URL + "/service.svc", exitOK, []string{"not checked ($SMARTERPAY_TOKEN is not set)"}},
	} {
		vars := map[string]string{"SMARTERPAY_TOKEN": tc.token, "SMARTERPAY_BASE_URL": tc.base}
		for _, args := range [][]string{
			{"config", "check", "--config", jobFile},
			{"submit", "--kind", "dd-payment", "--dry-run", batch},
		} {
			out, errs, code := runCLI(t, vars, args...)
			if code != tc.code {
				t.Errorf("%s: %s: exit %d, want %d\n%s\n%s", tc.name, args[0], code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errs, w) {
					t.Errorf("%s: %s: output lacks %q\n%s\n%s", tc.name, args[0], w, out, errs)
				}
			}
			if tc.token != "" && strings.Contains(out+errs, tc.token) {
				t.Errorf("%s: the token was echoed", tc.name)
			}
		}
	}
	if n := len(ts.Server.Operations()); n != 0 {
		t.Fatalf("probes executed %d operations", n)
	}

	// SmartRetry: the dry run checks the API key the same way.
	srv := cliSandbox(t, 1)
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: srv.URL}
	if out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--dry-run", refundCSV(t, t.TempDir(), 1, nil)); code != exitOK || !strings.Contains(out, "accepted") {
		t.Errorf("smartretry dry run: exit %d\n%s\n%s", code, out, errs)
	}
	vars[envSmartRetryKey] = "sr_nope"
	if out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--dry-run", refundCSV(t, t.TempDir(), 1, nil)); code != exitUsage || !strings.Contains(errs, "SMARTRETRY_API_KEY was refused") {
		t.Errorf("smartretry wrong key: exit %d\n%s\n%s", code, out, errs)
	}
}
