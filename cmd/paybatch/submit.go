package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/readers"
)

// Environment variables holding credentials and endpoints. Secrets are read
// from here only, never from flags.
const (
	envSmartRetryKey  = job.SmartRetryKeyVar
	envSmartRetryURL  = job.SmartRetryURLVar
	envSmarterPayTok  = job.SmarterPayTokVar
	envSmarterPayURL  = job.SmarterPayURLVar
	defaultPollWindow = 2 * time.Minute
)

// engineFlags are the submission-engine flags submit and status share.
type engineFlags struct {
	rate, statusRate string
	contracted       string
	concurrency      int
	pollDeadline     time.Duration
}

// engine parses the flags into the job's engine settings.
func (f *engineFlags) engine() (job.Engine, error) {
	eng := job.Engine{Concurrency: f.concurrency, PollDeadline: f.pollDeadline}
	if f.concurrency < 0 {
		return eng, paybatch.WithKind(paybatch.ErrUsage, errors.New("--concurrency must be positive"))
	}
	if f.pollDeadline < 0 {
		return eng, paybatch.WithKind(paybatch.ErrUsage, errors.New("--poll-deadline must be positive"))
	}
	var err error
	if f.rate != "" {
		if eng.SubmitRate, err = paybatch.ParseLimit(f.rate); err != nil {
			return eng, paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--rate: %w", err))
		}
	}
	if f.statusRate != "" {
		if eng.StatusRate, err = paybatch.ParseLimit(f.statusRate); err != nil {
			return eng, paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--status-rate: %w", err))
		}
	}
	if f.contracted != "" {
		if eng.Contracted, err = job.ParseContracted(f.contracted); err != nil {
			return eng, paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--contracted-rate: %w", err))
		}
	}
	return eng, nil
}

func (f *engineFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.contracted, "contracted-rate", "", "the credential's contracted payment limit N/DURATION, e.g. 300/1s, used instead of the documented one until the provider's X-RateLimit-Limit announces less (PROVIDER=N/DURATION,… to name providers)")
	fl.StringVar(&f.rate, "rate", "", "submission rate N/DURATION, e.g. 50/1s (can only lower the provider's documented or contracted limit)")
	fl.StringVar(&f.statusRate, "status-rate", "", "status-poll rate N/DURATION (can only lower the documented limit)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "requests in flight (default: sized from rate × observed latency)")
	fl.DurationVar(&f.pollDeadline, "poll-deadline", defaultPollWindow, "how long to poll for final statuses; rows still pending are reported pending")
}

// secretFlag recognises flags that would carry a credential.
func secretFlag(name string) bool {
	n := strings.ToLower(strings.TrimLeft(name, "-"))
	for _, s := range []string{"key", "token", "password", "passwd", "secret", "credential", "auth", "bearer"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// refuseSecretFlags turns "unknown flag --api-key" into advice to use the
// environment (the value is never echoed).
func refuseSecretFlags(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		msg := err.Error()
		if i := strings.Index(msg, "unknown flag: "); i >= 0 {
			name, _, _ := strings.Cut(msg[i+len("unknown flag: "):], "=")
			if secretFlag(name) {
				return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf(
					"%s: credentials are never taken from flags (they leak into shell history and process lists); set %s or %s in the environment",
					name, envSmartRetryKey, envSmarterPayTok))
			}
		}
		return paybatch.WithKind(paybatch.ErrUsage, err)
	})
}

func newSubmitCmd(e *env) *cobra.Command {
	var (
		kind, provider, journalPath, sheet string
		dryRun, allowPartial, noPoll       bool
		asJSON                             bool
		redrive                            []string
		redriveAll                         bool
		decimalComma                       bool
		ef                                 engineFlags
	)
	cmd := &cobra.Command{
		Use:   "submit --kind KIND [--provider smartretry|smarterpay] [--journal FILE] [--dry-run] [--allow-partial] [--redrive REASON | --redrive-rejected] [--contracted-rate N/DUR] [--rate N/DUR] [--status-rate N/DUR] [--concurrency N] [--poll-deadline DUR] [--no-poll] FILE...",
		Short: "Submit a batch exactly once, under the provider's rate limit, and poll final statuses",
		Long: `submit validates the batch files, journals every row in a DuckDB file (default
<first file>.journal.duckdb) before anything is sent, then sends each row once
under a deterministic idempotency key and the provider's rate limit, retrying
transient failures with the same key and body, and polls accepted rows for a
final status. Re-running the same files resumes an interrupted run and is a
no-op for finished rows; a row edited after it was sent is reported as a
conflict and not sent.

A row the provider refused (state rejected: 4xx with its reason code) is
final: it is not sent again unless asked with --redrive REASON or
--redrive-rejected, once the cause is fixed outside the row (the original
transaction settled, the terminal enabled, the right account's credential).
A re-drive uses the row's own idempotency key, so it can never execute twice;
the provider keeps its answer to a key for 24 h, so within that window a
re-drive to the same account gets the stored refusal back (submit says so and
when to try again).

Rate limits: the provider's documented limit per credential (SmartRetry 100
payment operations/s, SmarterPay 1000 requests/60s) unless the account has a
contracted one: --contracted-rate 300/1s (or limits.contracted in a job file)
uses it instead, until the provider's X-RateLimit-Limit header announces less
— then the announced limit is obeyed and said once; paybatch never goes above
what the provider announces. --rate only ever lowers the limit in use.
Pacing keeps the latency jitter it observes as margin (≈ 97–98 % of the limit
at 50 ± 10 ms), so a run at the limit draws no 429. Rehearse with the
sandbox: paybatch sandbox --smartretry-payments-limit 300/1s
--faults 'latency=50ms±10ms'.

Credentials and endpoints come from the environment only:
  SMARTRETRY_API_KEY, SMARTRETRY_BASE_URL (default https://api.smartretry.com;
                      the host alone, paths start with /v1/)
  SMARTERPAY_TOKEN,   SMARTERPAY_BASE_URL (default https://api.smarterpaycloud.com/service.svc;
                      it must end in /service.svc)
  The sandbox: SMARTRETRY_BASE_URL=http://127.0.0.1:8080,
               SMARTERPAY_BASE_URL=http://127.0.0.1:8080/service.svc
An answer that shows the endpoint is wrong (a 404 without the provider's
error body, an HTML page, a redirect, DNS, TLS or a refused connection before
the endpoint ever answered) stops the run with exit 2 naming the variable;
the rows stay unsent and a run with the right URL sends them. --dry-run
checks the endpoint and the credential with a call that moves no money.

Exit status: 0 every row accepted; 1 finished with declines, rejects or
conflicts; 2 usage or input error (nothing sent); 3 stopped part-way (signal,
credentials, outage, full disk, rows left unresolved): run again to resume; 4
another run holds the journal.`,
		Example: `  export SMARTRETRY_API_KEY=... SMARTRETRY_BASE_URL=http://127.0.0.1:8080   # the sandbox
  paybatch submit --kind refund --dry-run refunds.csv
  paybatch submit --kind refund --rate 50/1s --journal out/journal.duckdb refunds.csv
  paybatch submit --kind refund --contracted-rate 300/1s refunds.csv   # the account's contracted limit
  SMARTERPAY_TOKEN=... paybatch submit --kind dd-payment --allow-partial collections.xlsx`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := paybatch.ParseKind(kind)
			if err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--kind: %w", err))
			}
			if provider != "" {
				p, err := paybatch.ParseProvider(provider)
				if err != nil {
					return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--provider: %w", err))
				}
				if p != k.Provider() {
					return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--provider %s cannot execute kind %s (that is %s)", p, k, k.Provider()))
				}
			}
			eng, err := ef.engine()
			if err != nil {
				return err
			}
			eng.NoPoll = noPoll
			req := job.SubmitRequest{
				Files: args, Read: readers.Options{Kind: k, Sheet: sheet, DecimalComma: decimalComma},
				Journal: cmp.Or(journalPath, e.getenv(job.JournalURLVar)), AllowPartial: allowPartial, DryRun: dryRun, Engine: eng,
				Credentials: job.FromEnv(e.getenv, k.Provider()), Redrive: redrive,
			}
			if redriveAll {
				req.Redrive = append(req.Redrive, job.RedriveAll)
			}
			deps := e.jobDeps()
			if e.boundGo != nil {
				large, restore := e.boundGo(e.getenv)
				defer restore()
				deps.JournalLarge = large
			}
			out, err := job.Submit(cmd.Context(), deps, req)
			rep := out.Validation
			switch {
			case rep != nil && rep.Rejected > 0 && !allowPartial:
				printRejects(e.stderr, rep.Rejects, 20)
			case rep != nil && dryRun && err == nil:
				printDryRun(e.stdout, k, rep, out.Limits)
				printDates(e.stdout, "dates Bacs will use (the next collectable banking day, London)", out.Dates)
				err = printProbe(cmd.Context(), e.stdout, k.Provider(), req.Credentials)
			case out.Sent && asJSON:
				if jerr := writeResultJSON(e.stdout, out.Result, rep.Rejected, out.Journal); jerr != nil && err == nil {
					err = jerr
				}
			case out.Sent:
				printResult(e.stdout, out.Result, rep.Rejected, out.Journal)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "batch kind: refund, capture, void, dd-payment or dd-credit (required)")
	f.StringVar(&provider, "provider", "", "smartretry or smarterpay (default: the kind's provider)")
	f.StringVar(&journalPath, "journal", "", "journal: a DuckDB file or a postgres:// URL (default: $PAYBATCH_JOURNAL_URL, else <first file>.journal.duckdb)")
	f.BoolVar(&asJSON, "json", false, "print the run's result as JSON on stdout")
	f.BoolVar(&dryRun, "dry-run", false, "validate and print counts, totals and the ETA; send nothing")
	f.BoolVar(&allowPartial, "allow-partial", false, "submit the valid rows even when some are rejected (rejects go to the journal)")
	f.StringSliceVar(&redrive, "redrive", nil, "send again the rows the provider refused with this reason code (e.g. TRANSACTION_NOT_FOUND), once its cause is fixed; same idempotency key (README: Re-driving refused rows)")
	f.BoolVar(&redriveAll, "redrive-rejected", false, "send again every row the provider refused, except refusals a re-drive cannot cure (IDEMPOTENCY_CONFLICT)")
	f.BoolVar(&noPoll, "no-poll", false, "do not poll for final statuses (paybatch status does it later)")
	f.StringVar(&sheet, "sheet", "", "XLSX sheet to read (default: the first sheet)")
	f.BoolVar(&decimalComma, "decimal-comma", false, "amounts are written 1.234,56")
	ef.register(cmd)
	_ = cmd.MarkFlagRequired("kind")
	refuseSecretFlags(cmd)
	return cmd
}

func printRejects(w io.Writer, errs []paybatch.RowError, max int) {
	for i, re := range errs {
		if i == max {
			fmt.Fprintf(w, "… and %d more\n", len(errs)-max)
			return
		}
		fmt.Fprintln(w, "rejected:", re.Error())
	}
}

func printDryRun(w io.Writer, k paybatch.Kind, rep *readers.Report, l paybatch.Limits) {
	fmt.Fprintf(w, "dry run: nothing sent\n")
	fmt.Fprintf(w, "rows: %d read, %d valid, %d rejected\n", rep.Rows, rep.Valid, rep.Rejected)
	curs := make([]string, 0, len(rep.Totals))
	for c := range rep.Totals {
		curs = append(curs, c)
	}
	slices.Sort(curs)
	for _, c := range curs {
		fmt.Fprintf(w, "  %-10s %-4s %8d rows  total %s\n", k, c, rep.Counts[c], rep.Totals[c].String())
	}
	rate := l.Submit.Min(l.Overall)
	eta := time.Duration(float64(rep.Valid) / rate.PerSecond() * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(w, "rate: %s → about %s to submit %d rows (plus status polling)\n", rate, eta, rep.Valid)
}

// printDates lists Direct Debit rows by requested date and the date used,
// saying when it moved.
func printDates(w io.Writer, title string, ps []job.DatePlan) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for i, p := range ps {
		if i == 30 {
			fmt.Fprintf(w, "  … and %d more dates (--json for all)\n", len(ps)-30)
			break
		}
		req := p.Requested.Format(time.DateOnly)
		if p.Problem != "" {
			fmt.Fprintf(w, "  %-10s requested %s → none: %s  %8d rows\n", p.Kind, req, p.Problem, p.Rows)
			continue
		}
		note := ""
		if p.Moved {
			note = "moved"
		}
		if p.Expected {
			note = strings.TrimSpace(note + " (expected)")
		}
		fmt.Fprintf(w, "  %-10s requested %s → %s  %-16s %8d rows\n", p.Kind, req, p.Date.Format(time.DateOnly), note, p.Rows)
	}
}

func printResult(w io.Writer, res pipeline.Result, rejected int, journal string) {
	fmt.Fprintf(w, "rows: %d (%d new, %d already finished before this run", res.Rows, res.New, res.AlreadyDone)
	if res.Duplicates > 0 {
		fmt.Fprintf(w, ", %d duplicates skipped", res.Duplicates)
	}
	if rejected > 0 {
		fmt.Fprintf(w, ", %d rejected by validation", rejected)
	}
	fmt.Fprintln(w, ")")
	if res.Untallied {
		fmt.Fprintf(w, "  sent      %d of %d rows before the journal could not be written; the other %d were not sent.\n", res.Sent, res.Rows, res.Rows-res.Sent)
		fmt.Fprintf(w, "            Their answers are not all recorded: run again to resume (a row sent but not recorded is\n")
		fmt.Fprintf(w, "            re-sent with the same key and body and answered from the provider's replay, not executed twice).\n")
	}
	for _, st := range []paybatch.State{paybatch.StateFinal, paybatch.StateAccepted, paybatch.StateDeclined, paybatch.StateRejected,
		paybatch.StateConflict, paybatch.StateFailed, paybatch.StateSending, paybatch.StatePending} {
		if n := res.States[st]; n > 0 {
			fmt.Fprintf(w, "  %-9s %d", st, n)
			if t := res.Totals[st]; len(t) > 0 {
				fmt.Fprintf(w, "  %s", t.String())
			}
			fmt.Fprintln(w)
		}
	}
	for _, o := range []paybatch.Outcome{paybatch.OutcomeSucceeded, paybatch.OutcomeFailed, paybatch.OutcomeCancelled, paybatch.OutcomePending} {
		if n := res.Outcomes[o]; n > 0 {
			fmt.Fprintf(w, "  outcome %-9s %d\n", o, n)
		}
	}
	for _, c := range res.Conflicts {
		fmt.Fprintf(w, "conflict: %s: merchant_transaction_id %s was already journaled with other content (now %s %s); nothing sent — revert the edit, or give the changed row a new merchant_transaction_id\n",
			c.Source, c.MerchantTxID, c.NewAmount.String(), c.NewAmount.Currency)
	}
	if more := res.ConflictCount - len(res.Conflicts); more > 0 {
		fmt.Fprintf(w, "… and %d more conflicts (all listed in the journal's conflicts table)\n", more)
	}
	if res.Unresolved > 0 {
		fmt.Fprintf(w, "unresolved: %d rows sent over 24 h ago could not be confirmed: check them by hand (paybatch status lists them)\n", res.Unresolved)
	}
	fmt.Fprintf(w, "requests: %d, retries: %d, rate-limited: %d, elapsed %s\njournal: %s\n",
		res.Requests, res.Retries, res.RateLimited, res.Elapsed.Round(time.Millisecond), journal)
}

// writeResultJSON prints a run's result for scripts: counts by state and
// outcome, exact totals per state and currency, conflicts and counters.
func writeResultJSON(w io.Writer, res pipeline.Result, rejected int, journal string) error {
	type conflictJSON struct {
		MerchantTxID string `json:"merchant_transaction_id"`
		File         string `json:"file"`
		Sheet        string `json:"sheet,omitempty"`
		Row          int    `json:"row"`
		State        string `json:"journaled_state"`
	}
	out := struct {
		Journal     string                       `json:"journal"`
		Rows        int                          `json:"rows"`
		New         int                          `json:"new"`
		AlreadyDone int                          `json:"already_done"`
		Duplicates  int                          `json:"duplicates"`
		Rejected    int                          `json:"rejected_by_validation"`
		States      map[string]int               `json:"states"`
		Outcomes    map[string]int               `json:"outcomes"`
		Totals      map[string]map[string]string `json:"totals"`
		Conflicts   []conflictJSON               `json:"conflicts"`
		ConflictN   int                          `json:"conflict_count"`
		Unresolved  int                          `json:"unresolved"`
		Requests    int64                        `json:"requests"`
		Retries     int64                        `json:"retries"`
		RateLimited int64                        `json:"rate_limited"`
		ElapsedMS   int64                        `json:"elapsed_ms"`
		Sent        int                          `json:"sent,omitempty"`
		Untallied   bool                         `json:"untallied,omitempty"`
	}{Journal: journal, Rows: res.Rows, New: res.New, AlreadyDone: res.AlreadyDone, Duplicates: res.Duplicates,
		Rejected: rejected, States: map[string]int{}, Outcomes: map[string]int{}, Totals: map[string]map[string]string{},
		Conflicts: []conflictJSON{}, ConflictN: res.ConflictCount, Unresolved: res.Unresolved, Requests: res.Requests, Retries: res.Retries,
		RateLimited: res.RateLimited, ElapsedMS: res.Elapsed.Milliseconds(), Sent: res.Sent, Untallied: res.Untallied}
	for st, n := range res.States {
		out.States[string(st)] = n
	}
	for o, n := range res.Outcomes {
		out.Outcomes[string(o)] = n
	}
	for st, t := range res.Totals {
		out.Totals[string(st)] = t.Strings()
	}
	for _, c := range res.Conflicts {
		out.Conflicts = append(out.Conflicts, conflictJSON{c.MerchantTxID, c.Source.File, c.Source.Sheet, c.Source.Row, string(c.State)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
