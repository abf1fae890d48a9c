package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/writers"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// env is everything a command may touch outside its arguments, injected so
// that tests drive run() exactly as main does.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// checkpoint is job.Deps.Checkpoint: nil in the binary; tests that
	// kill a run at a step set it (run_test.go's TestMain).
	checkpoint func(point string)
	// open is job.Deps.Open (nil: os.Open); tests count the opens.
	open func(path string) (*os.File, error)
	// paced is job.Deps.Paced: the binary's process narrows Go to one core
	// while a run's requests are paced (cores.go); nil in tests that run
	// commands in their own process.
	paced func() (done func())
	// boundGo bounds the Go runtime's memory for a submit, and returns
	// the submit's job.Deps.JournalLarge (gomemory.go): set by main only,
	// nil in tests that run commands in their own process.
	boundGo func(getenv func(string) string) (large, restore func())

	// Set by the root command before any subcommand runs.
	log     *slog.Logger // structured log on stderr (--log-format, --quiet, --verbose)
	quiet   bool         // --quiet: print only errors
	verbose bool         // --verbose: debug detail
	color   bool         // false when NO_COLOR is set or stderr is not a terminal
}

// run is the whole program minus process wiring: it parses args, runs the
// command and returns an error whose kind exitCode maps to the exit status.
func run(ctx context.Context, args []string, e env) error {
	if e.now == nil {
		e.now = time.Now
	}
	if e.getenv == nil {
		e.getenv = func(string) string { return "" }
	}
	if e.stdin == nil {
		e.stdin = eofReader{}
	}
	if err := checkTimerSlack(e.getenv); err != nil {
		return paybatch.WithKind(paybatch.ErrConfig, err)
	}
	// Card numbers are masked on every line a command prints (logging.go).
	// cobra's own output is the help text, written by us: it keeps the
	// sandbox's documented test card numbers.
	helpOut, helpErr := e.stdout, e.stderr
	e.stdout, e.stderr = masked(e.stdout), masked(e.stderr)
	root := newRootCmd(&e)
	ranCommand := false
	markRun(root, &ranCommand)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(helpOut)
	root.SetErr(helpErr)
	err := root.ExecuteContext(ctx)
	if err != nil && !ranCommand {
		// cobra's own errors (unknown command or flag, missing argument)
		// come before any command ran: usage errors.
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}
	return err
}

// markRun wraps every command's RunE to set *ran when it starts, so run can
// tell cobra's own errors from a command's.
func markRun(c *cobra.Command, ran *bool) {
	if f := c.RunE; f != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return f(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "paybatch",
		Short: "Move money in bulk and prove where it went",
		Long: `paybatch reads batches of refunds (SmartRetry) and Direct Debit payments and
credits (SmarterPay), submits each row exactly once under the provider's rate
limit, polls for final statuses, reconciles them with your ledger in DuckDB and
writes a report finance can open.

Start with:  paybatch demo

Exit codes (every command):
  0  clean
  1  finished, with exceptions (rejected rows, declines, conflicts, mismatches)
  2  usage, input or configuration error: nothing was done
  3  stopped part-way (signal, credentials, provider outage, full disk) or an
     unclassified error: re-run to resume
  4  another run holds the journal lock`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	var lf logFlags
	lf.register(root)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		l, err := lf.logger(e.stderr)
		if err != nil {
			return paybatch.WithKind(paybatch.ErrUsage, err)
		}
		e.log, e.quiet, e.verbose = l, lf.quiet, lf.verbose
		e.color = e.getenv("NO_COLOR") == "" && isTerminal(e.stderr)
		return nil
	}
	root.AddCommand(
		// one line per command; each command lives in its own file
		newConfigCmd(e),

		newValidateCmd(e),
		newSubmitCmd(e),
		newStatusCmd(e),
		newJournalCmd(e),
		newSandboxCmd(e),

		newReconcileCmd(e),
		newRunCmd(e),
		newHistoryCmd(e),
		newDemoCmd(e),

		newServeCmd(e),
		newUserCmd(e),
	)
	return root
}

// isTerminal reports whether w is an interactive terminal (progress bars and
// colour only there; cron and pipes get plain log lines).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// say prints one line for a person on stdout, unless --quiet.
func (e *env) say(format string, args ...any) {
	if !e.quiet {
		fmt.Fprintf(e.stdout, format+"\n", args...)
	}
}

// jobDeps is what the job package gets from the CLI: the clock, the logger,
// the story lines, the progress display and the SMTP settings from the
// environment.
func (e *env) jobDeps() job.Deps {
	return job.Deps{
		Now: e.now, Log: e.log, Version: version,
		Say:        func(line string) { e.say("%s", line) },
		Progress:   func(cfg *pipeline.Config, total int) func() { return progressReporter(e, cfg, total) },
		Mail:       func(to []string) (writers.MailConfig, error) { return writers.MailConfigFromEnv(e.getenv, to) },
		Checkpoint: e.checkpoint,
		Open:       e.open,
		Paced:      e.paced,
	}
}
