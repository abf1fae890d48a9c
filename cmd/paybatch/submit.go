package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/pipeline/smartretry"
	"github.com/paybatch/paybatch/readers"
)

// Environment variables holding credentials and endpoints. Secrets are read
// from here only, never from flags.
const (
	envSmartRetryKey  = "SMARTRETRY_API_KEY"
	envSmartRetryURL  = "SMARTRETRY_BASE_URL"
	envSmarterPayTok  = "SMARTERPAY_TOKEN"
	envSmarterPayURL  = "SMARTERPAY_BASE_URL"
	defaultPollWindow = 2 * time.Minute
)

// engineFlags are the submission-engine flags submit and status share.
type engineFlags struct {
	rate, statusRate string
	concurrency      int
	pollDeadline     time.Duration
}

func (f *engineFlags) config(e *env, provider paybatch.Provider) (pipeline.Config, error) {
	cfg := pipeline.Config{Provider: provider, Concurrency: f.concurrency, PollDeadline: f.pollDeadline, Now: e.now}
	if f.concurrency < 0 {
		return cfg, errors.New("--concurrency must be positive")
	}
	if f.pollDeadline < 0 {
		return cfg, errors.New("--poll-deadline must be positive")
	}
	var err error
	if f.rate != "" {
		if cfg.SubmitRate, err = pipeline.ParseLimit(f.rate); err != nil {
			return cfg, fmt.Errorf("--rate: %w", err)
		}
	}
	if f.statusRate != "" {
		if cfg.StatusRate, err = pipeline.ParseLimit(f.statusRate); err != nil {
			return cfg, fmt.Errorf("--status-rate: %w", err)
		}
	}
	return cfg, nil
}

func (f *engineFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.rate, "rate", "", "submission rate N/DURATION, e.g. 50/1s (can only lower the provider's documented limit)")
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
				return paybatch.Exit(paybatch.ExitUsage, fmt.Errorf(
					"%s: credentials are never taken from flags (they leak into shell history and process lists); set %s or %s in the environment",
					name, envSmartRetryKey, envSmarterPayTok))
			}
		}
		return paybatch.Exit(paybatch.ExitUsage, err)
	})
}

// checkBaseURL refuses plain http except to loopback, before a client is
// built, with a message naming the variable.
func checkBaseURL(name, raw string) error {
	if raw == "" {
		return nil
	}
	if _, err := paybatch.ParseEndpoint(raw); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// newProvider builds the provider client from the environment.
func newProvider(e *env, p paybatch.Provider, pacer *pipeline.Pacer) (pipeline.Provider, error) {
	switch p {
	case paybatch.SmartRetry:
		base := e.getenv(envSmartRetryURL)
		if err := checkBaseURL(envSmartRetryURL, base); err != nil {
			return nil, err
		}
		key := e.getenv(envSmartRetryKey)
		if key == "" {
			return nil, fmt.Errorf("no SmartRetry API key: set %s in the environment", envSmartRetryKey)
		}
		return smartretry.NewClient(smartretry.ClientConfig{BaseURL: base, APIKey: key, OnRate: pacer.OnRate})
	case paybatch.SmarterPay:
		base := e.getenv(envSmarterPayURL)
		if err := checkBaseURL(envSmarterPayURL, base); err != nil {
			return nil, err
		}
		tok := e.getenv(envSmarterPayTok)
		if tok == "" {
			return nil, fmt.Errorf("no SmarterPay token: set %s in the environment", envSmarterPayTok)
		}
		return smarterpay.NewClient(smarterpay.ClientConfig{BaseURL: base, Token: tok, OnRate: pacer.OnRate})
	}
	return nil, fmt.Errorf("unknown provider %q", p)
}

func newSubmitCmd(e *env) *cobra.Command {
	var (
		kind, provider, journalPath, sheet string
		dryRun, allowPartial, noPoll       bool
		asJSON                             bool
		decimalComma                       bool
		ef                                 engineFlags
	)
	cmd := &cobra.Command{
		Use:   "submit --kind KIND [--provider smartretry|smarterpay] [--journal FILE] [--dry-run] [--allow-partial] [--rate N/DUR] [--status-rate N/DUR] [--concurrency N] [--poll-deadline DUR] [--no-poll] FILE...",
		Short: "Submit a batch exactly once, under the provider's rate limit, and poll final statuses",
		Long: `submit validates the batch files, journals every row in a DuckDB file (default
<first file>.journal.duckdb) before anything is sent, then sends each row once
under a deterministic idempotency key and the provider's rate limit, retrying
transient failures with the same key and body, and polls accepted rows for a
final status. Re-running the same files resumes an interrupted run and is a
no-op for finished rows; a row edited after it was sent is reported as a
conflict and not sent.

Credentials and endpoints come from the environment only:
  SMARTRETRY_API_KEY, SMARTRETRY_BASE_URL (default https://api.smartretry.com)
  SMARTERPAY_TOKEN,   SMARTERPAY_BASE_URL (default https://api.smarterpaycloud.com/service.svc)

Exit status: 0 every row accepted; 1 finished with declines, rejects or
conflicts; 2 usage or input error (nothing sent); 3 aborted (signal,
credentials, outage, rows left unresolved): run again to resume; 4 another run
holds the journal.`,
		Example: `  export SMARTRETRY_API_KEY=... SMARTRETRY_BASE_URL=http://127.0.0.1:8080   # the sandbox
  paybatch submit --kind refund --dry-run refunds.csv
  paybatch submit --kind refund --rate 50/1s --journal out/journal.duckdb refunds.csv
  SMARTERPAY_TOKEN=... paybatch submit --kind dd-payment --allow-partial collections.xlsx`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			k, err := paybatch.ParseKind(kind)
			if err != nil {
				return paybatch.Exit(paybatch.ExitUsage, fmt.Errorf("--kind: %w", err))
			}
			prov := k.Provider()
			if provider != "" {
				p, err := paybatch.ParseProvider(provider)
				if err != nil {
					return paybatch.Exit(paybatch.ExitUsage, fmt.Errorf("--provider: %w", err))
				}
				if p != prov {
					return paybatch.Exit(paybatch.ExitUsage, fmt.Errorf("--provider %s cannot execute kind %s (that is %s)", p, k, prov))
				}
			}
			cfg, err := ef.config(e, prov)
			if err != nil {
				return paybatch.Exit(paybatch.ExitUsage, err)
			}
			cfg.NoPoll = noPoll
			opts := readers.Options{Kind: k, Sheet: sheet, DecimalComma: decimalComma, Now: e.now}

			rep, err := readers.Validate(ctx, args, opts)
			if err != nil {
				return paybatch.Exit(paybatch.ExitUsage, err)
			}
			if rep.Rejected > 0 && !allowPartial {
				printRejects(e.stderr, rep.Rejects, 20)
				return paybatch.Exit(paybatch.ExitUsage, fmt.Errorf(
					"%d of %d rows rejected: nothing was submitted; fix them (paybatch validate writes the full list) or pass --allow-partial to submit the %d valid rows",
					rep.Rejected, rep.Rows, rep.Valid))
			}
			limits := cfg.Limits()
			if dryRun {
				printDryRun(e.stdout, k, rep, limits)
				return nil
			}

			pacer := pipeline.NewPacer(limits)
			cfg.Pacer = pacer
			client, err := newProvider(e, prov, pacer)
			if err != nil {
				return paybatch.Exit(paybatch.ExitUsage, err)
			}
			if journalPath == "" {
				journalPath = args[0] + ".journal.duckdb"
			}
			j, err := openJournal(ctx, journalPath)
			if err != nil {
				return err
			}
			defer j.Close()
			if rep.Rejected > 0 {
				if err := j.RecordRejects(ctx, rejectsOf(rep.Rejects)); err != nil {
					return paybatch.Exit(paybatch.ExitAborted, err)
				}
			}

			cfg.Logger = e.log
			stopProgress := progressReporter(e, &cfg, rep.Valid)
			res, runErr := pipeline.Submit(ctx, j, client, validRows(ctx, args, opts, rep), cfg)
			stopProgress()

			if runErr == nil {
				for _, f := range rep.Files {
					in := pipeline.Input{Path: f.Path, SHA256: f.SHA256, Rows: f.Rows, Kind: k, Provider: prov}
					if err := j.RecordInput(context.WithoutCancel(ctx), in, e.now()); err != nil {
						return paybatch.Exit(paybatch.ExitAborted, err)
					}
				}
			}
			if asJSON {
				if err := writeResultJSON(e.stdout, res, rep.Rejected, j.Path()); err != nil {
					return paybatch.Exit(paybatch.ExitAborted, err)
				}
			} else {
				printResult(e.stdout, res, rep.Rejected, j.Path())
			}
			switch {
			case errors.Is(runErr, pipeline.ErrAuth):
				return paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("%w; check %s", runErr, credentialVar(prov)))
			case runErr != nil:
				return paybatch.Exit(paybatch.ExitAborted, fmt.Errorf("%w; the journal is consistent: run the same command again to resume", runErr))
			}
			code := res.ExitCode()
			if code == paybatch.ExitOK && rep.Rejected > 0 {
				code = paybatch.ExitExceptions
			}
			switch code {
			case paybatch.ExitOK:
				return nil
			case paybatch.ExitAborted:
				return paybatch.Exit(code, errors.New("some rows are not finished (failed after retries, or sent over 24 h ago and unresolved): run again to resume, or check the rows listed"))
			}
			return paybatch.Exit(code, errors.New("finished with exceptions (declines, rejects or conflicts): see the summary"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "batch kind: refund, capture, void, dd-payment or dd-credit (required)")
	f.StringVar(&provider, "provider", "", "smartretry or smarterpay (default: the kind's provider)")
	f.StringVar(&journalPath, "journal", "", "journal file (default: <first file>.journal.duckdb)")
	f.BoolVar(&asJSON, "json", false, "print the run's result as JSON on stdout")
	f.BoolVar(&dryRun, "dry-run", false, "validate and print counts, totals and the ETA; send nothing")
	f.BoolVar(&allowPartial, "allow-partial", false, "submit the valid rows even when some are rejected (rejects go to the journal)")
	f.BoolVar(&noPoll, "no-poll", false, "do not poll for final statuses (paybatch status does it later)")
	f.StringVar(&sheet, "sheet", "", "XLSX sheet to read (default: the first sheet)")
	f.BoolVar(&decimalComma, "decimal-comma", false, "amounts are written 1.234,56")
	ef.register(cmd)
	_ = cmd.MarkFlagRequired("kind")
	refuseSecretFlags(cmd)
	return cmd
}

func credentialVar(p paybatch.Provider) string {
	if p == paybatch.SmarterPay {
		return envSmarterPayTok
	}
	return envSmartRetryKey
}

// validRows streams the files again, skipping the rows validation refused.
func validRows(ctx context.Context, paths []string, opts readers.Options, rep *readers.Report) iter.Seq2[paybatch.Instruction, error] {
	return func(yield func(paybatch.Instruction, error) bool) {
		for _, p := range paths {
			b, err := readers.Open(p, opts)
			if err != nil {
				yield(paybatch.Instruction{}, err)
				return
			}
			for in, err := range b.All(ctx) {
				var re *paybatch.RowError
				if errors.As(err, &re) {
					if rep.IsRejected(re.Source) {
						continue
					}
					yield(paybatch.Instruction{}, fmt.Errorf("%w (the file changed since it was validated?)", err))
					b.Close()
					return
				}
				if err != nil {
					yield(paybatch.Instruction{}, err)
					b.Close()
					return
				}
				if rep.IsRejected(in.Source) {
					continue
				}
				if !yield(in, nil) {
					b.Close()
					return
				}
			}
			b.Close()
		}
	}
}

func rejectsOf(errs []paybatch.RowError) []pipeline.Reject {
	out := make([]pipeline.Reject, 0, len(errs))
	for _, re := range errs {
		out = append(out, pipeline.Reject{Source: re.Source, Column: re.Column, Value: re.Value, Reason: re.Err.Error()})
	}
	return out
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

func printDryRun(w io.Writer, k paybatch.Kind, rep *readers.Report, l pipeline.Limits) {
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

func printResult(w io.Writer, res pipeline.Result, rejected int, journal string) {
	fmt.Fprintf(w, "rows: %d (%d new, %d already finished before this run", res.Rows, res.New, res.AlreadyDone)
	if res.Duplicates > 0 {
		fmt.Fprintf(w, ", %d duplicates skipped", res.Duplicates)
	}
	if rejected > 0 {
		fmt.Fprintf(w, ", %d rejected by validation", rejected)
	}
	fmt.Fprintln(w, ")")
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

// progressReporter shows a live bar when stderr is a terminal, otherwise a
// structured log line every 5 s. It returns the function that stops it.
func progressReporter(e *env, cfg *pipeline.Config, total int) func() {
	if e.quiet {
		return func() {}
	}
	if isTerminal(e.stderr) {
		var bar *progressbar.ProgressBar
		phase := ""
		cfg.ProgressEvery = 200 * time.Millisecond
		cfg.Progress = func(p pipeline.Progress) {
			if p.Phase != phase {
				if bar != nil {
					_ = bar.Finish()
					fmt.Fprintln(e.stderr)
				}
				phase = p.Phase
				bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(e.stderr), progressbar.OptionShowCount(),
					progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"), progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
			}
			bar.Describe(fmt.Sprintf("%s  429s %d  retries %d", p.Phase, p.RateLimited, p.Retries))
			_ = bar.Set(p.Done)
		}
		return func() {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(e.stderr)
			}
		}
	}
	log := e.log
	cfg.ProgressEvery = 5 * time.Second
	cfg.Progress = func(p pipeline.Progress) {
		rate := 0.0
		if p.Elapsed > 0 {
			rate = float64(p.Done) / p.Elapsed.Seconds()
		}
		log.Info("progress", "phase", p.Phase, "done", p.Done, "total", p.Total, "rows_per_s", fmt.Sprintf("%.1f", rate),
			"requests", p.Requests, "retries", p.Retries, "rate_limited", p.RateLimited, "elapsed", p.Elapsed.Round(time.Second))
	}
	_ = total
	return func() {}
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
	}{Journal: journal, Rows: res.Rows, New: res.New, AlreadyDone: res.AlreadyDone, Duplicates: res.Duplicates,
		Rejected: rejected, States: map[string]int{}, Outcomes: map[string]int{}, Totals: map[string]map[string]string{},
		Conflicts: []conflictJSON{}, ConflictN: res.ConflictCount, Unresolved: res.Unresolved, Requests: res.Requests, Retries: res.Retries,
		RateLimited: res.RateLimited, ElapsedMS: res.Elapsed.Milliseconds()}
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
