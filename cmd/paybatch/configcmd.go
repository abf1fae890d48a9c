package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

func newConfigCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a job file",
	}
	var path string
	var asJSON bool
	check := &cobra.Command{
		Use:   "check --config job.yaml",
		Short: "Validate a job file and print the resolved plan",
		Long: `Validate a job file and print what "paybatch run" would do with it: the input
files matched now, the ledger, where the journal, report and exports go, the
limits, and which environment variables hold the credentials (set or not —
their values are never printed). When the credential is set, the endpoint
and the credential are checked with a harmless call that moves no money
(exit 2 if either is wrong).

Base URLs: SmartRetry https://api.smartretry.com (the host alone; paths
start with /v1/), SmarterPay https://api.smarterpaycloud.com/service.svc
(it must end in /service.svc). The local sandbox serves both over plain
http on loopback: http://127.0.0.1:8080 and
http://127.0.0.1:8080/service.svc.`,
		Example: `  paybatch config check --config testdata/job.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := job.LoadPlan(path)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(viewPlan(plan, e.getenv))
			}
			printPlan(e.stdout, plan, e.getenv)
			return printProbe(cmd.Context(), e.stdout, plan.Provider, plan.Credentials(e.getenv))
		},
	}
	check.Flags().StringVarP(&path, "config", "c", "", "job file (YAML)")
	check.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	_ = check.MarkFlagRequired("config")
	cmd.AddCommand(check)
	return cmd
}

type planView struct {
	Config       string   `json:"config"`
	Provider     string   `json:"provider"`
	Kind         string   `json:"kind"`
	Inputs       []string `json:"inputs"`
	InputPattern []string `json:"input_patterns"`
	Ledger       string   `json:"ledger"`
	Journal      string   `json:"journal"`
	Outputs      string   `json:"outputs"`
	Exports      []string `json:"exports"`
	MetricsFile  string   `json:"metrics_file,omitempty"`
	Rate         string   `json:"rate"`
	StatusRate   string   `json:"status_rate"`
	Contracted   string   `json:"contracted"`
	Concurrency  string   `json:"concurrency"`
	PollDeadline string   `json:"poll_deadline"`
	AllowPartial bool     `json:"allow_partial"`
	SecretEnv    string   `json:"secret_env"`
	SecretSet    bool     `json:"secret_set"`
	BaseURLEnv   string   `json:"base_url_env"`
	BaseURL      string   `json:"base_url"`
	EmailTo      []string `json:"email_to,omitempty"`
	SMTPHostSet  bool     `json:"smtp_host_set"`
}

func viewPlan(p *job.Plan, getenv func(string) string) planView {
	v := planView{
		Config: p.ConfigPath, Provider: string(p.Provider), Kind: string(p.Kind),
		Inputs: p.Inputs, InputPattern: p.InputPattern, Ledger: p.Ledger, Journal: p.Journal,
		Outputs: p.Outputs, Exports: p.Exports, MetricsFile: p.MetricsFile,
		Rate: cmp.Or(p.Rate, "provider default"), StatusRate: cmp.Or(p.StatusRate, "provider default"),
		Contracted:  cmp.Or(p.Contracted, "none (the documented limit)"),
		Concurrency: "automatic", PollDeadline: p.PollDeadline.String(), AllowPartial: p.AllowPartial,
		SecretEnv: p.SecretEnv, SecretSet: getenv(p.SecretEnv) != "",
		BaseURLEnv: p.BaseURLEnv, BaseURL: cmp.Or(getenv(p.BaseURLEnv), defaultBaseURL(p.Provider)),
		EmailTo: p.EmailTo, SMTPHostSet: getenv("SMTP_HOST") != "",
	}
	if p.Concurrency > 0 {
		v.Concurrency = fmt.Sprint(p.Concurrency)
	}
	if v.Inputs == nil {
		v.Inputs = []string{}
	}
	return v
}

func defaultBaseURL(p paybatch.Provider) string {
	if p == paybatch.SmarterPay {
		return smarterpay.DefaultBaseURL
	}
	return smartretry.DefaultBaseURL
}

// printProbe checks the provider's endpoint and credential with a harmless
// call (job.Probe) and says what it found; an unset credential is reported,
// not probed.
func printProbe(ctx context.Context, w io.Writer, p paybatch.Provider, c job.Credentials) error {
	sv, uv := job.Standard(p)
	sv, uv = cmp.Or(c.SecretVar, sv), cmp.Or(c.BaseURLVar, uv)
	base := cmp.Or(c.BaseURL, defaultBaseURL(p))
	if c.Secret == "" {
		fmt.Fprintf(w, "endpoint    %s: not checked ($%s is not set)\n", base, sv)
		return nil
	}
	if err := job.Probe(ctx, p, c); err != nil {
		fmt.Fprintf(w, "endpoint    %s: FAILED\n", base)
		return err
	}
	fmt.Fprintf(w, "endpoint    %s: ok, $%s accepted (checked with a call that moves no money; $%s)\n", base, sv, uv)
	return nil
}

func printPlan(w io.Writer, p *job.Plan, getenv func(string) string) {
	v := viewPlan(p, getenv)
	set := func(b bool) string {
		if b {
			return "set"
		}
		return "NOT SET"
	}
	fmt.Fprintf(w, "config      %s\n", v.Config)
	fmt.Fprintf(w, "job         %s %s\n", v.Provider, v.Kind)
	fmt.Fprintf(w, "inputs      %s\n", strings.Join(v.InputPattern, ", "))
	if len(v.Inputs) == 0 {
		fmt.Fprintf(w, "            (no file matches now)\n")
	}
	for _, in := range v.Inputs {
		fmt.Fprintf(w, "            - %s%s\n", in, existsNote(in))
	}
	fmt.Fprintf(w, "ledger      %s%s\n", v.Ledger, existsNote(v.Ledger))
	fmt.Fprintf(w, "journal     %s\n", v.Journal)
	fmt.Fprintf(w, "outputs     %s (report.xlsx%s)\n", v.Outputs, exportsNote(v.Exports))
	if v.MetricsFile != "" {
		fmt.Fprintf(w, "metrics     %s\n", v.MetricsFile)
	}
	fmt.Fprintf(w, "limits      contracted %s, rate %s, status rate %s, concurrency %s, poll deadline %s\n", v.Contracted, v.Rate, v.StatusRate, v.Concurrency, v.PollDeadline)
	fmt.Fprintf(w, "partial     %v (rows rejected by validation %s)\n", v.AllowPartial, map[bool]string{true: "are skipped, the rest is sent", false: "stop their whole file"}[v.AllowPartial])
	fmt.Fprintf(w, "credentials $%s %s; endpoint %s ($%s)\n", v.SecretEnv, set(v.SecretSet), v.BaseURL, v.BaseURLEnv)
	if len(v.EmailTo) > 0 {
		fmt.Fprintf(w, "e-mail      %s via $SMTP_HOST (%s)\n", strings.Join(v.EmailTo, ", "), set(v.SMTPHostSet))
	}
}

func existsNote(path string) string {
	if _, err := os.Stat(path); err != nil {
		return "  (missing)"
	}
	return ""
}

func exportsNote(ex []string) string {
	if len(ex) == 0 {
		return ""
	}
	return ", " + strings.Join(ex, ", ")
}
