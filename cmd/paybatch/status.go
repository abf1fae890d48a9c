package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal"
)

func newStatusCmd(e *env) *cobra.Command {
	var (
		journalPath string
		asJSON      bool
		ef          engineFlags
	)
	cmd := &cobra.Command{
		Use:   "status [--journal FILE | FILE] [--poll-deadline DUR] [--status-rate N/DUR] [--json]",
		Short: "Poll accepted rows for final statuses and summarise a journal",
		Long: `status opens a submit journal (--journal, or <FILE>.journal.duckdb for a batch
FILE), polls every accepted row that has no final status yet until it has one
or --poll-deadline passes (0 = do not poll), and prints counts by provider,
kind, state and outcome plus every row that needs attention.

Polling needs the provider credentials in the environment (SMARTRETRY_API_KEY,
SMARTERPAY_TOKEN and the *_BASE_URL variables, as for submit).

While another paybatch run holds the journal, status shows that run's
progress (published beside the journal as JOURNAL.progress.json) instead,
and exits 0; without a snapshot it exits 4.

Exit status: 0 nothing needs attention; 1 declines, rejects (provider or
validation), conflicts or failed outcomes; 3 rows unfinished (pending,
sending, failed): run submit again; 4 another run holds the journal and has
published no progress.`,
		Example: `  paybatch status --journal out/journal.duckdb
  paybatch status refunds.csv --poll-deadline 10m
  paybatch status --journal out/journal.duckdb --poll-deadline 0 --json   # report only, no polling`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case journalPath == "" && len(args) == 0 && e.getenv(job.JournalURLVar) != "":
				journalPath = e.getenv(job.JournalURLVar)
			case journalPath == "" && len(args) == 1:
				journalPath = args[0] + ".journal.duckdb"
			case journalPath == "":
				return paybatch.WithKind(paybatch.ErrUsage, errors.New("give --journal FILE or the batch file whose journal to read"))
			}
			eng, err := ef.engine()
			if err != nil {
				return err
			}
			req := job.StatusRequest{Journal: journalPath, Poll: eng.PollDeadline > 0, Engine: eng,
				Credentials: map[paybatch.Provider]job.Credentials{
					paybatch.SmartRetry: job.FromEnv(e.getenv, paybatch.SmartRetry),
					paybatch.SmarterPay: job.FromEnv(e.getenv, paybatch.SmarterPay),
				}}
			rep, err := job.Status(cmd.Context(), e.jobDeps(), req)
			if rep == nil {
				return err
			}
			switch {
			case rep.Running != nil && asJSON:
				if jerr := writeProgressJSON(e.stdout, rep.Journal, *rep.Running); jerr != nil {
					return jerr
				}
			case rep.Running != nil:
				printProgress(e.stdout, rep.Journal, *rep.Running, time.Now())
			case asJSON:
				if jerr := writeStatusJSON(e.stdout, rep.Journal, rep.Counts, rep.Attention, rep.Rejects, rep.Dates); jerr != nil {
					return jerr
				}
			default:
				printStatus(e.stdout, rep.Journal, rep.Counts, rep.Attention, rep.Rejects)
				printDates(e.stdout, "\nDirect Debit dates (requested → used by SmarterPay; expected: not sent yet, the date Bacs would use today)", rep.Dates)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&journalPath, "journal", "", "journal to read: a DuckDB file or a postgres:// URL (default $PAYBATCH_JOURNAL_URL)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print counts and the rows needing attention as JSON")
	ef.register(cmd)
	refuseSecretFlags(cmd)
	return cmd
}

func printStatus(w io.Writer, path string, counts []journal.StateCount, attention []*journal.Row, rejects []journal.Reject) {
	fmt.Fprintf(w, "journal: %s\n", path)
	fmt.Fprintf(w, "%-11s %-10s %-9s %-10s %8s\n", "provider", "kind", "state", "outcome", "rows")
	for _, c := range counts {
		fmt.Fprintf(w, "%-11s %-10s %-9s %-10s %8d\n", c.Provider, c.Kind, c.State, c.Outcome, c.Rows)
	}
	if len(attention) > 0 {
		fmt.Fprintf(w, "\nrows needing attention (%d):\n", len(attention))
	}
	for i, r := range attention {
		if i == 50 {
			fmt.Fprintf(w, "… and %d more (use --json for all)\n", len(attention)-50)
			break
		}
		fmt.Fprintf(w, "  %s  %s  %s %s %s  %s\n", r.Source, r.MerchantTxID, r.State, r.Outcome, r.ReasonCode, r.Problem)
	}
	if len(rejects) > 0 {
		fmt.Fprintf(w, "\nrows refused by validation, never sent (%d):\n", len(rejects))
	}
	for i, r := range rejects {
		if i == 50 {
			fmt.Fprintf(w, "… and %d more (use --json for all)\n", len(rejects)-50)
			break
		}
		fmt.Fprintf(w, "  %s  %s  %s %q  %s\n", r.Source, r.MerchantTxID, r.Column, r.Value, r.Reason)
	}
}

// printProgress shows what the run holding the journal is doing.
func printProgress(w io.Writer, path string, p journal.Progress, now time.Time) {
	fmt.Fprintf(w, "journal: %s\n", path)
	if p.Server != "" {
		fmt.Fprintf(w, "paybatch serve (pid %d) holds this journal: see its batches, progress and outcomes at %s\n", p.PID, p.Server)
		fmt.Fprintf(w, "its journal counts as of %s:\n", p.CountsAt.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "%-11s %-10s %-9s %-10s %8s\n", "provider", "kind", "state", "outcome", "rows")
		for _, c := range p.Counts {
			fmt.Fprintf(w, "%-11s %-10s %-9s %-10s %8d\n", c.Provider, c.Kind, c.State, c.Outcome, c.Rows)
		}
		return
	}
	fmt.Fprintf(w, "another paybatch run (pid %d) holds this journal; its progress as of %s (%s ago):\n",
		p.PID, p.Updated.UTC().Format(time.RFC3339), now.Sub(p.Updated).Round(time.Second))
	if p.Phase != "" {
		fmt.Fprintf(w, "  %s: %d of %d rows done, %d requests\n", p.Phase, p.Done, p.Total, p.Requests)
	}
	if len(p.Counts) > 0 {
		fmt.Fprintf(w, "journal rows as of %s:\n", p.CountsAt.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "%-11s %-10s %-9s %-10s %8s\n", "provider", "kind", "state", "outcome", "rows")
		for _, c := range p.Counts {
			fmt.Fprintf(w, "%-11s %-10s %-9s %-10s %8d\n", c.Provider, c.Kind, c.State, c.Outcome, c.Rows)
		}
	}
}

func writeProgressJSON(w io.Writer, path string, p journal.Progress) error {
	out := struct {
		Journal  string           `json:"journal"`
		Running  bool             `json:"running"`
		Progress journal.Progress `json:"progress"`
	}{path, true, p}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

type statusRowJSON struct {
	MerchantTxID string `json:"merchant_transaction_id"`
	Key          string `json:"idempotency_key"`
	File         string `json:"file"`
	Sheet        string `json:"sheet,omitempty"`
	Row          int    `json:"row"`
	Kind         string `json:"kind"`
	Amount       string `json:"amount,omitempty"`
	Currency     string `json:"currency,omitempty"`
	State        string `json:"state"`
	Outcome      string `json:"outcome,omitempty"`
	Status       string `json:"provider_status,omitempty"`
	ProviderID   string `json:"provider_id,omitempty"`
	ReasonCode   string `json:"reason_code,omitempty"`
	Problem      string `json:"problem,omitempty"`
	Attempts     int    `json:"attempts"`
	UpdatedAt    string `json:"updated_at"`
	// Direct Debit: the collection/credit date asked for, the one the
	// provider stored, and whether they differ
	RequestedDate string `json:"requested_date,omitempty"`
	ProviderDate  string `json:"provider_date,omitempty"`
	DateMoved     bool   `json:"date_moved,omitempty"`
}

type dateJSON struct {
	Kind          string `json:"kind"`
	RequestedDate string `json:"requested_date"`
	Date          string `json:"date,omitempty"` // the date used; absent when none can be (problem)
	Expected      bool   `json:"expected"`       // computed: not sent yet
	Moved         bool   `json:"moved"`
	Problem       string `json:"problem,omitempty"`
	Rows          int    `json:"rows"`
}

type rejectJSON struct {
	MerchantTxID string `json:"merchant_transaction_id,omitempty"`
	File         string `json:"file"`
	Sheet        string `json:"sheet,omitempty"`
	Row          int    `json:"row"`
	Column       string `json:"column"`
	Value        string `json:"value"`
	Reason       string `json:"reason"`
}

func writeStatusJSON(w io.Writer, path string, counts []journal.StateCount, attention []*journal.Row, rejects []journal.Reject, dates []job.DatePlan) error {
	type countJSON struct {
		Provider string `json:"provider"`
		Kind     string `json:"kind"`
		State    string `json:"state"`
		Outcome  string `json:"outcome,omitempty"`
		Rows     int    `json:"rows"`
	}
	out := struct {
		Journal   string          `json:"journal"`
		Counts    []countJSON     `json:"counts"`
		Attention []statusRowJSON `json:"attention"`
		Rejects   []rejectJSON    `json:"rejects"`
		Dates     []dateJSON      `json:"dates"`
	}{Journal: path, Counts: []countJSON{}, Attention: []statusRowJSON{}, Rejects: []rejectJSON{}, Dates: []dateJSON{}}
	for _, p := range dates {
		d := dateJSON{Kind: string(p.Kind), RequestedDate: p.Requested.Format(time.DateOnly), Expected: p.Expected,
			Moved: p.Moved, Problem: p.Problem, Rows: p.Rows}
		if !p.Date.IsZero() {
			d.Date = p.Date.Format(time.DateOnly)
		}
		out.Dates = append(out.Dates, d)
	}
	for _, r := range rejects {
		out.Rejects = append(out.Rejects, rejectJSON{MerchantTxID: r.MerchantTxID, File: r.Source.File, Sheet: r.Source.Sheet,
			Row: r.Source.Row, Column: r.Column, Value: r.Value, Reason: r.Reason})
	}
	for _, c := range counts {
		out.Counts = append(out.Counts, countJSON{string(c.Provider), string(c.Kind), string(c.State), string(c.Outcome), c.Rows})
	}
	for _, r := range attention {
		row := statusRowJSON{MerchantTxID: r.MerchantTxID, Key: r.Key, File: r.Source.File, Sheet: r.Source.Sheet, Row: r.Source.Row,
			Kind: string(r.Kind), State: string(r.State), Outcome: string(r.Outcome), Status: r.ProviderStatus,
			ProviderID: r.ProviderID, ReasonCode: r.ReasonCode, Problem: r.Problem, Attempts: r.Attempts,
			UpdatedAt: r.UpdatedAt.UTC().Format(time.RFC3339)}
		if r.Amount.Minor != 0 {
			row.Amount, row.Currency = r.Amount.String(), r.Amount.Currency.Code()
		}
		if !r.CollectionDate.IsZero() {
			row.RequestedDate = r.CollectionDate.Format(time.DateOnly)
		}
		if !r.ProviderDate.IsZero() {
			row.ProviderDate = r.ProviderDate.Format(time.DateOnly)
			row.DateMoved = !r.CollectionDate.IsZero() && !r.ProviderDate.Equal(r.CollectionDate)
		}
		out.Attention = append(out.Attention, row)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
