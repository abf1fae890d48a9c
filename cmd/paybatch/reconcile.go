package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/readers"
	"github.com/paybatch/paybatch/reconcile"
)

// reconcileFlags are the options of `paybatch reconcile`.
type reconcileFlags struct {
	journal, results, ledger  string
	ledgerSheet, resultsSheet string
	tolerance                 string
	db, memoryLimit           string
	parquetDir, jsonOut       string
	out, csvDir               string
	emailTo                   []string
	acceptFormulas            bool
	xlsxMatchedRows           int64
}

func newReconcileCmd(e *env) *cobra.Command {
	var f reconcileFlags
	cmd := &cobra.Command{
		Use:   "reconcile (--journal FILE | --results FILE) --ledger FILE",
		Short: "Match what the provider did against the merchant's ledger",
		Long: `reconcile matches the provider side (the pipeline's journal, or a provider
results file) against the merchant's ledger on merchant_transaction_id, in
DuckDB, with exact amounts. Every id lands in exactly one category, first match
wins: rejected_by_provider, rejected_before_send, duplicate_at_provider, duplicate_in_ledger,
missing_at_provider, missing_in_ledger, pending, currency_mismatch,
status_mismatch, amount_mismatch, matched. Totals are per currency.

Files: CSV, XLSX or Parquet. Exit 0 when every id matched, 1 when there are
exceptions, 2 for bad input.`,
		Example: `  paybatch reconcile --journal out/journal.duckdb --ledger ledger.csv --out report.xlsx
  paybatch reconcile --results provider-export.xlsx --ledger ledger.parquet --json - --csv exports/
  paybatch reconcile --journal out/journal.duckdb --ledger ledger.csv --out report.xlsx --email-to finance@example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReconcile(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.journal, "journal", "", "the pipeline's journal: a DuckDB file (opened read-only) or a postgres:// URL (default $PAYBATCH_JOURNAL_URL)")
	fl.StringVar(&f.results, "results", "", "provider results file (CSV, XLSX or Parquet)")
	fl.StringVar(&f.ledger, "ledger", "", "merchant ledger export (CSV, XLSX or Parquet)")
	fl.StringVar(&f.ledgerSheet, "ledger-sheet", "", "XLSX sheet of the ledger (default: the first)")
	fl.StringVar(&f.resultsSheet, "results-sheet", "", "XLSX sheet of the results (default: the first)")
	fl.StringVar(&f.tolerance, "tolerance", "0", "largest amount difference still matched, in major units of each currency")
	fl.StringVar(&f.db, "db", "", "keep the reconciliation in this DuckDB file (default: in memory)")
	fl.StringVar(&f.memoryLimit, "memory-limit", reconcile.DefaultMemoryLimit, "memory bound (DuckDB gets 55% of it and spills to disk beyond that)")
	fl.StringVar(&f.parquetDir, "parquet", "", "write one Parquet file per non-empty category into DIR")
	fl.StringVar(&f.jsonOut, "json", "", "write the summary as JSON to FILE ('-' for stdout)")
	fl.StringVar(&f.out, "out", "", "write the XLSX report (Summary with chart, Exceptions, Matched) to FILE")
	fl.StringVar(&f.csvDir, "csv", "", "write one CSV per category into DIR")
	fl.BoolVar(&f.acceptFormulas, "accept-formula-values", false, "read XLSX formula cells of the ledger or results at the value the spreadsheet last computed (refused otherwise: it may be stale)")
	fl.Int64Var(&f.xlsxMatchedRows, "xlsx-matched-rows", 0, "put at most N matched rows in the --out workbook (every exception always; all matched rows stay in --csv/--parquet; the Summary says so); 0 = every row")
	fl.StringSliceVar(&f.emailTo, "email-to", nil, "e-mail the report to ADDR[,ADDR] (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM from the environment)")
	return cmd
}

func runReconcile(ctx context.Context, e *env, f reconcileFlags) error {
	if f.journal == "" && f.results == "" {
		f.journal = e.getenv(job.JournalURLVar)
	}
	if (f.journal == "") == (f.results == "") {
		return paybatch.WithKind(paybatch.ErrUsage, errors.New("reconcile: give exactly one of --journal or --results"))
	}
	if f.ledger == "" {
		return paybatch.WithKind(paybatch.ErrUsage, errors.New("reconcile: --ledger is required"))
	}
	if f.xlsxMatchedRows < 0 {
		return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("reconcile: --xlsx-matched-rows %d: want 0 (every row) or a positive cap", f.xlsxMatchedRows))
	}
	tol, err := decimal.NewFromString(strings.TrimSpace(f.tolerance))
	if err != nil || tol.IsNegative() {
		return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("reconcile: --tolerance %q: want a non-negative decimal such as 0.01", f.tolerance))
	}
	r, err := reconcile.Open(ctx, reconcile.Options{Path: f.db, MemoryLimit: f.memoryLimit, Tolerance: tol, AcceptFormulaValues: f.acceptFormulas,
		Rows: f.out != "" || f.csvDir != "" || f.parquetDir != ""})
	if err != nil {
		return paybatch.WithKind(paybatch.ErrInput, err)
	}
	defer r.Close()
	if err := r.LoadLedger(ctx, f.ledger, f.ledgerSheet); err != nil {
		return paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("ledger: %w", err))
	}
	if f.journal != "" {
		// A journal from an older paybatch gets the views reconcile reads;
		// a current one is not touched. (Anything but a lock or damage is
		// left to LoadJournal to name.)
		switch err := upgradeJournal(ctx, f.journal); {
		case errors.Is(err, journal.ErrLocked):
			return paybatch.WithKind(paybatch.ErrLocked, err)
		case errors.Is(err, journal.ErrDamaged), errors.Is(err, journal.ErrNewerSchema):
			return paybatch.WithKind(paybatch.ErrInput, err)
		}
		err = job.LoadJournal(ctx, r, f.journal)
	} else {
		err = r.LoadResults(ctx, f.results, f.resultsSheet)
	}
	if err != nil {
		return paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("provider side: %w", err))
	}
	// What was reconciled (the inputs, their SHA-256, a journal's facts)
	// is read only by the workbook's Summary and the e-mail: without
	// either, hashing both files would be work nothing reads (#19). With
	// one, the files are hashed while Run reads them (Run leaves the second
	// core idle much of the time).
	var hashes inputHashes
	if f.out != "" || len(f.emailTo) > 0 {
		paths := []string{f.ledger, f.results}
		if f.journal != "" && !postgres.IsURL(f.journal) {
			paths[1] = f.journal
		}
		hctx, stop := context.WithCancel(ctx)
		hashes = startHashes(hctx, paths...)
		defer hashes.wait()
		defer stop()
	}
	sum, err := r.Run(ctx)
	if err != nil {
		return paybatch.WithKind(paybatch.ErrInput, err)
	}

	// With --json - the JSON owns stdout; the table goes to stderr.
	tableOut := e.stdout
	if f.jsonOut == "-" {
		tableOut = e.stderr
	}
	printSummary(tableOut, sum)
	if err := writeReconcileOutputs(ctx, e, f, r, sum, hashes); err != nil {
		return paybatch.WithKind(paybatch.ErrInput, err)
	}

	var total int64
	for _, ct := range sum.Categories {
		total += ct.Count
	}
	if exc := total - sum.Categories[paybatch.CatMatched].Count; exc > 0 {
		return paybatch.WithKind(paybatch.ErrExceptions, fmt.Errorf("reconcile: %d of %d ids need attention", exc, total))
	}
	return nil
}

// writeReconcileOutputs writes every output asked for once the
// reconciliation has run; with --json - the summary goes to stdout. The
// inputs' SHA-256 come from hashes (started before Run; nil: none asked).
func writeReconcileOutputs(ctx context.Context, e *env, f reconcileFlags, r *reconcile.Reconciler, sum paybatch.Summary, hashes inputHashes) error {
	run := paybatch.RunInfo{Started: e.now(), Version: version}
	if f.out != "" || len(f.emailTo) > 0 {
		var err error
		if run, err = reconcileRunInfo(ctx, e, f, r, hashes); err != nil {
			return err
		}
	}
	o := job.Outputs{XLSX: f.out, CSVDir: f.csvDir, ParquetDir: f.parquetDir, JSON: f.jsonOut, EmailTo: f.emailTo,
		XLSXMatchedRows: f.xlsxMatchedRows}
	if o.JSON == "-" {
		o.JSON = ""
	}
	written, err := job.WriteReport(ctx, e.jobDeps(), r, run, sum, nil, o)
	if err == nil && f.jsonOut == "-" {
		err = job.EncodeJSON(e.stdout, sum)
	}
	for _, p := range written {
		fmt.Fprintln(e.stderr, "wrote", p)
	}
	return err
}

// reconcileRunInfo says what was reconciled, for the report's Summary and
// the e-mail: the provider side (journal or results file) and the ledger
// with their SHA-256 (WriteReport adds the line counts Run read); from a
// journal, also the batch files it recorded and its providers and kinds.
func reconcileRunInfo(ctx context.Context, e *env, f reconcileFlags, r *reconcile.Reconciler, hashes inputHashes) (paybatch.RunInfo, error) {
	run := paybatch.RunInfo{Started: e.now(), Version: version}
	side, role := f.results, "results"
	if postgres.IsURL(f.journal) {
		// A server's journal: no file to read facts from or to hash.
		run.ProviderSide = &paybatch.InputFile{Path: postgres.Redact(f.journal), Role: "journal"}
		sha, err := hashes.sha256(ctx, f.ledger)
		if err != nil {
			return run, err
		}
		run.Ledger = &paybatch.InputFile{Path: f.ledger, SHA256: sha}
		return run, nil
	}
	if f.journal != "" {
		side, role = f.journal, "journal"
		facts, err := r.ReadJournalFacts(ctx, f.journal)
		if err != nil {
			return run, err
		}
		run.Inputs = facts.Inputs
		var ps, ks []string
		for _, p := range facts.Providers {
			ps = append(ps, string(p))
		}
		for _, k := range facts.Kinds {
			ks = append(ks, string(k))
		}
		run.Provider, run.Kind = paybatch.Provider(strings.Join(ps, ", ")), paybatch.Kind(strings.Join(ks, ", "))
	}
	sha, err := hashes.sha256(ctx, side)
	if err != nil {
		return run, err
	}
	run.ProviderSide = &paybatch.InputFile{Path: side, SHA256: sha, Role: role}
	if sha, err = hashes.sha256(ctx, f.ledger); err != nil {
		return run, err
	}
	run.Ledger = &paybatch.InputFile{Path: f.ledger, SHA256: sha}
	return run, nil
}

// inputHashes are the SHA-256 of input files, each computed on a goroutine
// of its own from startHashes on: `paybatch reconcile` starts them before
// Run so that hashing the inputs (0.06 s at 1M ids) overlaps Run instead of
// following it.
type inputHashes map[string]*fileHash

type fileHash struct {
	done chan struct{} // closed once sum and err are set
	sum  string
	err  error
}

// startHashes starts hashing every named file ("" skipped, each path
// once); ctx stops them.
func startHashes(ctx context.Context, paths ...string) inputHashes {
	h := inputHashes{}
	for _, p := range paths {
		if _, ok := h[p]; ok || p == "" {
			continue
		}
		fh := &fileHash{done: make(chan struct{})}
		h[p] = fh
		go func() {
			defer close(fh.done)
			fh.sum, fh.err = readers.FileSHA256(ctx, p)
		}()
	}
	return h
}

// sha256 is the SHA-256 of the file at path: the hash started for it, or,
// for a file none was started for, computed now.
func (h inputHashes) sha256(ctx context.Context, path string) (string, error) {
	fh, ok := h[path]
	if !ok {
		return readers.FileSHA256(ctx, path)
	}
	select {
	case <-fh.done:
		return fh.sum, fh.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// wait returns once every hash has ended.
func (h inputHashes) wait() {
	for _, fh := range h {
		<-fh.done
	}
}

// printSummary renders the summary as a table: one line per category with
// its count and per-currency totals, then the ledger and provider totals and
// their difference.
func printSummary(w io.Writer, sum paybatch.Summary) {
	var total int64
	for _, ct := range sum.Categories {
		total += ct.Count
	}
	fmt.Fprintf(w, "Reconciled %d ids: %d matched (%.1f%%)\n\n", total,
		sum.Categories[paybatch.CatMatched].Count, 100*sum.MatchRate)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CATEGORY\tCOUNT\tTOTALS\t")
	for _, c := range paybatch.Categories {
		ct := sum.Categories[c]
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", c, ct.Count, ct.Totals.String())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ledger totals\t%s\n", sum.LedgerTotals.String())
	fmt.Fprintf(tw, "provider totals (done)\t%s\n", sum.ProviderTotals.String())
	if len(sum.NoProviderAmount) > 0 {
		fmt.Fprintf(tw, "done without a provider amount (voids)\t%s\n", sum.NoProviderAmount.String())
	}
	fmt.Fprintf(tw, "difference (ledger - voids - provider)\t%s\n", sum.Difference().String())
	tw.Flush()
}

// upgradeJournal gives a DuckDB journal from an older paybatch the views
// reconcile reads; a PostgreSQL journal is migrated when it is opened.
func upgradeJournal(ctx context.Context, loc string) error {
	if postgres.IsURL(loc) {
		return nil
	}
	return journal.Upgrade(ctx, loc)
}
