package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
)

func newHistoryCmd(e *env) *cobra.Command {
	var (
		config, journalPath string
		limit               int
		asJSON              bool
	)
	cmd := &cobra.Command{
		Use:   "history (--config job.yaml | --journal FILE|URL) [--limit N] [--json]",
		Short: "List past runs of a job: inputs, counts, totals, exceptions and report",
		Long: `history lists the runs recorded in a job's journal, newest first: when each
started, whether it finished (its report written and e-mailed) or the step it
stopped before, its input files with their rows, the ids reconciled, matched
and in exception, the ledger totals, and the report kept for it
(report-RUN.xlsx beside report.xlsx, which is always the latest).

A run that did not finish is carried on by the next 'paybatch run'.`,
		Example: `  paybatch history --config /etc/paybatch/refunds.yaml
  paybatch history --journal paybatch-out/journal.duckdb --limit 7 --json
  PGPASSWORD=... paybatch history --journal postgres://paybatch@db.internal/payments`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case config != "" && journalPath != "":
				return paybatch.WithKind(paybatch.ErrUsage, errors.New("give --config or --journal, not both"))
			case config != "":
				plan, err := job.LoadPlan(config)
				if err != nil {
					return err
				}
				journalPath = plan.Journal
			case journalPath == "" && e.getenv(job.JournalURLVar) != "":
				journalPath = e.getenv(job.JournalURLVar)
			case journalPath == "":
				return paybatch.WithKind(paybatch.ErrUsage, errors.New("give --config job.yaml or --journal FILE|URL (or set PAYBATCH_JOURNAL_URL)"))
			}
			runs, err := job.History(cmd.Context(), journalPath, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return job.EncodeJSON(e.stdout, runs)
			}
			printHistory(e.stdout, runs)
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "job file (YAML): read its journal")
	cmd.Flags().StringVar(&journalPath, "journal", "", "the journal: a DuckDB file or a postgres:// URL (default $PAYBATCH_JOURNAL_URL)")
	cmd.Flags().IntVar(&limit, "limit", 0, "list only the newest N runs (0 = all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the runs as JSON")
	return cmd
}

// printHistory renders runs as a table, one line per run.
func printHistory(w io.Writer, runs []job.PastRun) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs recorded in this journal yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tSTATE\tINPUTS\tROWS\tIDS\tMATCHED\tEXCEPTIONS\tLEDGER TOTALS\tREPORT\t")
	for _, r := range runs {
		var ins []string
		for _, in := range r.Inputs {
			ins = append(ins, filepath.Base(in.Path))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.ID, r.Started.Local().Format("2006-01-02 15:04"), r.State,
			strings.Join(ins, ", "), r.Rows, num(r.IDs), num(r.Matched), num(r.Exceptions), totals(r.LedgerTotals), orDash(r.Report))
	}
	tw.Flush()
}

func num(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func totals(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + m[k]
	}
	return strings.Join(parts, "  ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
