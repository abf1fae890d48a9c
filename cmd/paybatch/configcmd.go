package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
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
their values are never printed).`,
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
			return nil
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
		return "https://api.smarterpaycloud.com/service.svc"
	}
	return "https://api.smartretry.com"
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
	fmt.Fprintf(w, "limits      rate %s, status rate %s, concurrency %s, poll deadline %s\n", v.Rate, v.StatusRate, v.Concurrency, v.PollDeadline)
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
