package job

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

func TestExampleJobConfigResolves(t *testing.T) {
	plan, err := LoadPlan("../../../testdata/job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if plan.Provider != "smartretry" || plan.Kind != "refund" {
		t.Errorf("provider/kind = %s/%s", plan.Provider, plan.Kind)
	}
	if len(plan.Inputs) != 1 || filepath.Base(plan.Inputs[0]) != "refunds.csv" {
		t.Errorf("inputs = %v", plan.Inputs)
	}
	if plan.PollDeadline != 2*time.Minute || plan.MaxAttachment != 10<<20 {
		t.Errorf("deadline %v, attachment cap %d", plan.PollDeadline, plan.MaxAttachment)
	}
	if !filepath.IsAbs(plan.Journal) || filepath.Base(plan.Journal) != "journal.duckdb" {
		t.Errorf("journal = %s", plan.Journal)
	}
}

func TestJobConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"secret in file", "kind: refund\ninputs: [a.csv]\nledger: l.csv\napi_key: sr_live_123\n", "secrets are never written"},
		{"unknown field", "kind: refund\ninputs: [a.csv]\nledger: l.csv\nouputs: x\n", "field ouputs not found"},
		{"bad kind", "kind: refunds\ninputs: [a.csv]\nledger: l.csv\n", "unknown kind"},
		{"kind vs provider", "provider: smarterpay\nkind: refund\ninputs: [a.csv]\nledger: l.csv\n", "is a smartretry operation"},
		{"no inputs", "kind: refund\nledger: l.csv\n", "inputs: give at least one"},
		{"no ledger", "kind: refund\ninputs: [a.csv]\n", "ledger: the merchant ledger"},
		{"bad rate", "kind: refund\ninputs: [a.csv]\nledger: l.csv\nlimits: {rate: fast}\n", "limits.rate"},
		{"bad contracted", "kind: refund\ninputs: [a.csv]\nledger: l.csv\nlimits: {contracted: lots}\n", "limits.contracted"},
		{"bad deadline", "kind: refund\ninputs: [a.csv]\nledger: l.csv\npoll_deadline: soon\n", "poll_deadline"},
		{"bad export", "kind: refund\ninputs: [a.csv]\nledger: l.csv\nexports: [pdf]\n", "exports"},
		{"negative matched cap", "kind: refund\ninputs: [a.csv]\nledger: l.csv\nreport: {xlsx_matched_rows: -1}\n", "report.xlsx_matched_rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "job.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPlan(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if strings.Contains(tt.yaml, "sr_live_123") && strings.Contains(err.Error(), "sr_live_123") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestExpandInputs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.csv", "a.xlsx", "notes.pdf", "sub/c.csv"} {
		p := filepath.Join(dir, f)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := expandInputs([]string{dir, filepath.Join(dir, "sub", "*.csv"), filepath.Join(dir, "b.csv")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a.xlsx"), filepath.Join(dir, "b.csv"), filepath.Join(dir, "sub", "c.csv")}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// limits.contracted is the job credential's contracted payment limit: the
// engine paces at it, and limits.rate still only lowers it.
func TestJobContractedLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "job.yaml")
	yaml := "kind: refund\ninputs: [a.csv]\nledger: l.csv\nlimits: {contracted: 300/1s}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := LoadPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := plan.Engine()
	if err != nil {
		t.Fatal(err)
	}
	cfg := eng.config(&Deps{}, plan.Provider)
	if got := cfg.Limits().Submit; got != (paybatch.Limit{N: 300, Per: time.Second}) {
		t.Errorf("submit limit %v, want the contracted 300/1s", got)
	}
	eng.SubmitRate = paybatch.Limit{N: 50, Per: time.Second}
	if got := eng.config(&Deps{}, plan.Provider).Limits().Submit; got.N != 50 {
		t.Errorf("limits.rate 50/1s under a contract: %v", got)
	}
}

func TestParseContracted(t *testing.T) {
	sec := func(n int) paybatch.Limit { return paybatch.Limit{N: n, Per: time.Second} }
	tests := []struct {
		in      string
		want    map[paybatch.Provider]paybatch.Limit
		wantErr string
	}{
		{"300/s", map[paybatch.Provider]paybatch.Limit{"": sec(300)}, ""},
		{"smartretry=300/1s, smarterpay=3000/60s", map[paybatch.Provider]paybatch.Limit{paybatch.SmartRetry: sec(300),
			paybatch.SmarterPay: {N: 3000, Per: time.Minute}}, ""},
		{"stripe=300/s", nil, "stripe"},
		{"300/s,400/s", nil, "a second contracted limit"},
		{"fast", nil, "N/DURATION"},
	}
	for _, tt := range tests {
		got, err := ParseContracted(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("%q: %v, %v", tt.in, got, err)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%q: %s = %v, want %v", tt.in, k, got[k], v)
			}
		}
	}
}
