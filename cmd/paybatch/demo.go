package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

func newDemoCmd(e *env) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Run the whole flow on bundled data against the built-in sandbox",
		Long: `Run paybatch end to end on bundled data, in one process, with nothing faked:
read a refund batch, start the SmartRetry sandbox on a loopback port (real
HTTP), submit every refund with an idempotency key under a rate limit, poll
each status, reconcile the results with a bundled ledger in DuckDB and write
report.xlsx. The batch is built so that every kind of exception shows up.

Everything lands in DIR (default: a new paybatch-demo-* directory under the
current one): the input files, the journal, the reconciliation database,
report.xlsx and the exports.`,
		Example: `  paybatch demo
  paybatch demo --dir /tmp/paybatch-demo && open /tmp/paybatch-demo/report.xlsx`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), e, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the demo's files (default: new paybatch-demo-* under the current directory)")
	return cmd
}

func runDemo(ctx context.Context, e *env, dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp(".", "paybatch-demo-"+e.now().UTC().Format("20060102-150405")+"-")
		if err != nil {
			return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("demo directory: %w", err))
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	dir = abs
	if err := resetDemoDir(dir); err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}
	if err := copyDemoData(dir); err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}

	fixtures, err := os.Open(filepath.Join(dir, "fixtures.json"))
	if err != nil {
		return err
	}
	fx, err := sandbox.LoadFixtures(fixtures)
	fixtures.Close()
	if err != nil {
		return fmt.Errorf("demo fixtures: %w", err)
	}
	srv, err := sandbox.New(sandbox.Options{Fixtures: fx, Seed: 1, SmartRetry: srsandbox.SandboxConfig{SettleAfter: 300 * time.Millisecond}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo sandbox: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "paybatch demo: SmartRetry sandbox on %s, files in %s\n", url, dir)

	plan := &job.Plan{
		ConfigPath: "(demo)", Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
		Inputs: []string{filepath.Join(dir, "refunds.csv")}, Ledger: filepath.Join(dir, "ledger.csv"),
		Outputs: dir, Journal: filepath.Join(dir, "journal.duckdb"), Exports: []string{"csv", "json", "parquet"},
		PollDeadline: 30 * time.Second, Rate: "20/1s", SecretEnv: "SMARTRETRY_API_KEY", BaseURLEnv: "SMARTRETRY_BASE_URL",
	}
	d := e.jobDeps()
	if !e.verbose {
		// The demo prints its own short story; engine progress lines only
		// with --verbose.
		d.Log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	out, err := job.Run(ctx, d, plan, job.Credentials{Secret: "sr_test_key", BaseURL: url})
	if out.Summary != nil && !e.quiet {
		printSummary(e.stdout, *out.Summary)
		e.say("report: %s", out.Report)
	}
	if err != nil && !errors.Is(err, paybatch.ErrExceptions) {
		return err
	}
	fmt.Fprintf(e.stdout, "\nThe demo batch is built to show every kind of exception (%s says which row shows what).\nOpen the report above in Excel or LibreOffice; every file the demo used or wrote is in %s.\n", filepath.Join(dir, "README.md"), dir)
	return nil
}

// copyDemoData writes the bundled batch, ledger and fixtures into dir so
// the user can open what the demo ran on.
func copyDemoData(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	return fs.WalkDir(paybatch.DemoData(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(paybatch.DemoData(), p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, p)
		if _, err := os.Stat(dst); err == nil {
			return nil // keep a file the user edited in a re-used --dir
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// resetDemoDir clears a previous demo's outputs from dir: a re-run in the
// same --dir starts from scratch, because the sandbox it talks to is new each
// time. A non-empty dir that is not a previous demo is refused rather than
// written into.
func resetDemoDir(dir string) error {
	outputs := []string{"journal.duckdb", "journal.duckdb.wal", "journal.duckdb.lock", "journal.duckdb.progress.json",
		"journal.duckdb.changes", "journal.duckdb.checkpoint", "journal.duckdb.checkpoint.wal",
		"reconcile.duckdb", "reconcile.duckdb.wal", "report.xlsx", "summary.json", "csv", "parquet"}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fixtures.json")); err != nil {
		return fmt.Errorf("demo directory %s is not empty and holds no earlier demo; give an empty or new --dir", dir)
	}
	for _, name := range outputs {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("demo directory: %w", err)
		}
	}
	return nil
}
