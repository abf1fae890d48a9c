package main

import (
	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch/cmd/paybatch/job"
)

func newRunCmd(e *env) *cobra.Command {
	var path, metrics string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run --config job.yaml",
		Short: "Run the nightly job: validate, submit, poll, reconcile, report and e-mail every new input",
		Long: `Run the job a config file describes, end to end, for every input file not
processed before (same content hash, every row final): validate → submit →
poll → reconcile against the ledger → write report.xlsx and exports → e-mail.

It is safe to run twice: a file already processed is skipped and said so, a
run that crashed resumes from the journal, and a run that finds nothing new
sends nothing and exits 0. Two overlapping runs cannot both submit: the
second exits with code 4.`,
		Example: `  SMARTRETRY_API_KEY=... paybatch run --config /etc/paybatch/refunds.yaml
  # crontab: 15 2 * * *  paybatch run --config /etc/paybatch/refunds.yaml --log-format json --quiet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := job.LoadPlan(path)
			if err != nil {
				return err
			}
			if metrics != "" {
				plan.MetricsFile = metrics
			}
			if u := e.getenv(job.JournalURLVar); u != "" && !plan.JournalSet {
				plan.Journal = u
			}
			out, err := job.Run(cmd.Context(), e.jobDeps(), plan, plan.Credentials(e.getenv))
			if out.Summary != nil && !e.quiet {
				printSummary(e.stdout, *out.Summary)
				e.say("report: %s", out.Report)
			}
			if asJSON {
				if jerr := job.EncodeJSON(e.stdout, out); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "job file (YAML); see testdata/job.yaml")
	cmd.Flags().StringVar(&metrics, "metrics-file", "", "write Prometheus text-format metrics here (overrides the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run's outcome as JSON on stdout")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
