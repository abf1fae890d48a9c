package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/cmd/paybatch/web"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/writers"
)

// serveFlags are `paybatch serve`'s options.
type serveFlags struct {
	addr, dataDir, journal, tlsCert, tlsKey, ledger string
	thresholds                                      string
	emailTo, schedules                              []string
	allowRemoteHTTP, demo                           bool
	maxUpload                                       int64
	sessionTTL                                      time.Duration
	ef                                              engineFlags
}

func newServeCmd(e *env) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--data-dir DIR] [--tls-cert FILE --tls-key FILE] [--demo]",
		Short: "Serve the finance web app: upload, validate, approve (maker–checker), send, watch, download",
		Long: `serve runs the finance web app. Uploaders sign in, upload a batch (CSV or XLSX)
and read the validation page — counts, totals per currency, every reject
grouped by reason, the rows as they will be sent — then submit it for
approval. Another person (an approver, never the uploader; two above the
--two-approvers-above thresholds) approves it, and the server sends it
through the same engine and journal as 'paybatch submit', with live progress,
per-row outcomes and an audit trail. A sent batch is reconciled on its page
against an uploaded ledger (or --ledger, automatically after sending): the
category table and chart, report.xlsx, CSV, Parquet and JSON downloads, and
an e-mail of the report to --email-to.

Everything lives in --data-dir: the journal (journal.duckdb, which also holds
users, sessions, batches, approvals and the audit trail) and the uploads.
Create the first admin with 'paybatch user add NAME --role admin'.

--journal postgres://… (or PAYBATCH_JOURNAL_URL) keeps the journal — with
the users, batches and audit trail — in PostgreSQL instead, shared with
'paybatch run', 'status' and 'history' in other processes and on other
hosts while the server runs (the password from PGPASSWORD, never in the
URL); uploads stay in --data-dir.

Credentials come from the environment, as for submit: SMARTRETRY_API_KEY,
SMARTRETRY_BASE_URL, SMARTERPAY_TOKEN, SMARTERPAY_BASE_URL.

Plain HTTP is served on a loopback address only; anywhere else give
--tls-cert and --tls-key (or --allow-remote-http behind a TLS proxy).

--schedule "CRON=JOBFILE" runs a job file (as 'paybatch run --config JOBFILE')
at its times inside the server, instead of cron: one job at a time, a job
still running at its next time skipped. A job whose journal is the
server's PostgreSQL journal shares it as any other process does; a job
whose journal is the server's own DuckDB file runs on the journal the
server holds, taking turns with the server's sends.

--demo needs nothing else: it starts the built-in sandbox, creates demo users
(printed at start) and the demo batch awaiting approval, in a new data
directory.`,
		Example: `  paybatch serve --demo
  paybatch user add ada --role admin --data-dir /var/lib/paybatch   # password on stdin
  SMARTRETRY_API_KEY=... paybatch serve --data-dir /var/lib/paybatch --ledger ledger.csv \
      --addr 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem --two-approvers-above GBP=10000,EUR=10000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), e, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address (plain HTTP only on loopback; port 0 picks a free one)")
	fl.StringVar(&f.dataDir, "data-dir", "", "where the journal and uploads live (default ./paybatch-data; --demo: a new directory)")
	fl.StringVar(&f.journal, "journal", "", "the journal: a postgres:// URL (shared with other processes) or a DuckDB file (default DATA_DIR/journal.duckdb, or $"+job.JournalURLVar+")")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fl.BoolVar(&f.allowRemoteHTTP, "allow-remote-http", false, "serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)")
	fl.StringVar(&f.ledger, "ledger", "", "ledger file each sent batch is reconciled against (CSV, XLSX or Parquet) for its report.xlsx")
	fl.StringArrayVar(&f.schedules, "schedule", nil, "run a job file on a cron schedule inside the server, CRON=JOBFILE (repeatable), e.g. \"15 2 * * *=/etc/paybatch/refunds.yaml\"")
	fl.StringSliceVar(&f.emailTo, "email-to", nil, "recipients a batch's report can be e-mailed to from its page (SMTP_* settings as for run)")
	fl.StringVar(&f.thresholds, "two-approvers-above", "", "per-currency totals above which two approvers are needed, e.g. GBP=10000,EUR=10000")
	fl.Int64Var(&f.maxUpload, "max-upload", 100<<20, "largest upload accepted, in bytes")
	fl.DurationVar(&f.sessionTTL, "session-ttl", 8*time.Hour, "how long a sign-in lasts")
	fl.BoolVar(&f.demo, "demo", false, "run with the built-in sandbox, demo users and the demo batch")
	f.ef.register(cmd)
	refuseSecretFlags(cmd)
	return cmd
}

// parseThresholds reads "GBP=10000,EUR=9999.99" into minor units, exactly.
func parseThresholds(s string) (map[string]int64, error) {
	out := map[string]int64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		code, amt, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("--two-approvers-above: %q: want CODE=AMOUNT, e.g. GBP=10000", part)
		}
		cur, err := paybatch.ParseCurrency(code)
		if err != nil {
			return nil, fmt.Errorf("--two-approvers-above: %w", err)
		}
		m, err := paybatch.ParseMoney(amt, cur)
		if err != nil {
			return nil, fmt.Errorf("--two-approvers-above %s: %w", cur, err)
		}
		out[cur.Code()] = m.Minor
	}
	return out, nil
}

// checkServeAddr allows plain HTTP on loopback only, unless explicitly
// allowed.
func checkServeAddr(addr string, tls, allowRemoteHTTP bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8080: %w", addr, err)
	}
	if tls || allowRemoteHTTP || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--addr %q is not a loopback address: passwords and session cookies would cross the network in clear; give --tls-cert and --tls-key (or --allow-remote-http behind a TLS-terminating proxy)", addr)
}

func runServe(ctx context.Context, e *env, f serveFlags) error {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return paybatch.WithKind(paybatch.ErrUsage, errors.New("--tls-cert and --tls-key go together"))
	}
	useTLS := f.tlsCert != ""
	if err := checkServeAddr(f.addr, useTLS, f.allowRemoteHTTP); err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}
	thresholds, err := parseThresholds(f.thresholds)
	if err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}
	engine, err := f.ef.engine()
	if err != nil {
		return err
	}
	if f.dataDir == "" {
		f.dataDir = "paybatch-data"
		if f.demo {
			d, err := os.MkdirTemp("", "paybatch-serve-demo-")
			if err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, err)
			}
			f.dataDir = d
		}
	}
	if f.dataDir, err = filepath.Abs(f.dataDir); err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}
	if err := os.MkdirAll(f.dataDir, 0o750); err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--data-dir: %w", err))
	}

	creds := func(p paybatch.Provider) job.Credentials { return job.FromEnv(e.getenv, p) }
	if f.demo {
		stop, url, err := startDemoSandbox(f.dataDir)
		if err != nil {
			return err
		}
		defer stop()
		creds = func(p paybatch.Provider) job.Credentials {
			if p == paybatch.SmartRetry {
				return job.Credentials{Secret: srsandbox.TestAPIKey, BaseURL: url}
			}
			return job.FromEnv(e.getenv, p)
		}
		if f.ledger == "" {
			f.ledger = filepath.Join(f.dataDir, "ledger.csv")
		}
		if engine.PollDeadline == defaultPollWindow {
			engine.PollDeadline = 30 * time.Second
		}
		fmt.Fprintf(e.stdout, "paybatch serve --demo: SmartRetry sandbox on %s\n", url)
	}
	if f.ledger != "" {
		if _, err := os.Stat(f.ledger); err != nil {
			return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--ledger: %w", err))
		}
	}

	loc := serverJournal(e, f.journal, f.dataDir)
	if !postgres.IsURL(loc) {
		if loc, err = filepath.Abs(loc); err != nil {
			return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--journal: %w", err))
		}
	}
	jobs, err := parseSchedules(e, f.schedules)
	if err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}

	j, store, release, err := openServerJournal(ctx, loc)
	if err != nil {
		return err
	}
	defer release()
	var turn sync.Mutex // the server's sends and the scheduled jobs on its DuckDB journal take turns
	srv, err := web.New(web.Config{
		Store: store, Journal: j, JournalTurn: &turn, DataDir: f.dataDir, Credentials: creds, Engine: engine,
		Thresholds: thresholds, Ledger: f.ledger, MaxUpload: f.maxUpload, SessionTTL: f.sessionTTL,
		Secure: useTLS, Now: e.now, Logger: e.log,
		EmailTo: f.emailTo, Mail: func(to []string) (writers.MailConfig, error) { return writers.MailConfigFromEnv(e.getenv, to) },
		Schedule: scheduleLines(jobs),
	})
	if err != nil {
		return paybatch.WithKind(paybatch.ErrResumable, err)
	}
	if f.demo {
		if err := seedDemo(ctx, e, srv, store); err != nil {
			return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("demo: %w", err))
		}
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", f.addr)
	if err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("listen on %s: %w", f.addr, err))
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: nil}
	scheme := "http"
	if useTLS {
		scheme = "https"
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	sendCtx, stopSending := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSending()
	if err := srv.Start(sendCtx); err != nil {
		ln.Close()
		return paybatch.WithKind(paybatch.ErrResumable, err)
	}
	stopSchedules := startSchedules(sendCtx, e, jobs, ownJournal{loc: loc, j: j, turn: srv.JournalTurn()})
	defer stopSchedules()
	// status and history, refused a DuckDB journal's lock, point here.
	if hj, ok := j.(interface {
		HeldByServer(ctx context.Context, url string) error
	}); ok {
		if err := hj.HeldByServer(ctx, fmt.Sprintf("%s://%s", scheme, ln.Addr())); err != nil {
			e.log.Warn("serve: could not say where the journal is held", "err", err)
		}
	}
	fmt.Fprintf(e.stdout, "paybatch serve: listening on %s://%s (data in %s, journal %s)\n", scheme, ln.Addr(), f.dataDir, j.Name())
	errc := make(chan error, 2) // the listener's end, and watchJournal's
	if dj, ok := j.(*journal.DuckDB); ok {
		tick := time.NewTicker(journalProbe)
		defer tick.Stop()
		go watchJournal(sendCtx, dj.Invalidated, tick.C, errc)
	}
	go func() {
		if useTLS {
			errc <- hs.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	stopSchedules() // a scheduled job in progress resumes from its journal at its next time
	srv.Close()     // a batch being sent stays "sending" and resumes at the next start
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf("serve: %w", err))
	}
	fmt.Fprintln(e.stdout, "paybatch serve stopped")
	return nil
}

// journalProbe is how often the server asks its DuckDB journal whether
// DuckDB has invalidated it (watchJournal): a SELECT 1, ≈ 0.1 ms.
const journalProbe = 2 * time.Second

// watchJournal ends the server (an error on errc) once DuckDB has
// invalidated the journal's database (journal/duckdb_invalid.go), asking
// probe at each tick until ctx ends. Every page, sign-in and send would
// fail from then on until the process restarts; a restart opens the file
// again with nothing committed lost, and resumes the batches being sent
// exactly once (Start) — which reopening the file inside the running
// server would not do.
func watchJournal(ctx context.Context, probe func(context.Context) error, tick <-chan time.Time, errc chan<- error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		if err := probe(ctx); err != nil {
			errc <- fmt.Errorf("%w; restart the server: batches being sent resume where they stopped, and rows already sent are not sent again", err)
			return
		}
	}
}

// serverJournal is where the server's journal is: --journal, else
// $PAYBATCH_JOURNAL_URL, else DATA_DIR/journal.duckdb.
func serverJournal(e *env, flag, dataDir string) string {
	if flag != "" {
		return flag
	}
	if u := e.getenv(job.JournalURLVar); u != "" {
		return u
	}
	return filepath.Join(dataDir, "journal.duckdb")
}

// openServerJournal opens the journal at loc for the process's life (see
// job.HoldJournal: a DuckDB file is locked, a PostgreSQL journal shared)
// and the web store (users, batches, approvals, audit trail) in it.
func openServerJournal(ctx context.Context, loc string) (web.Journal, *web.DuckStore, func(), error) {
	j, release, err := job.HoldJournal(ctx, loc)
	if err != nil {
		return nil, nil, nil, err
	}
	var wj web.Journal
	var store *web.DuckStore
	switch hj := j.(type) {
	case *journal.DuckDB:
		wj = hj
		store, err = web.OpenStore(ctx, hj)
	case *postgres.Journal:
		wj = hj
		store, err = web.OpenPostgresStore(ctx, hj)
	default:
		err = fmt.Errorf("journal %s: the web server cannot run on a %T", j.Name(), j)
	}
	if err != nil {
		release()
		return nil, nil, nil, paybatch.WithKind(paybatch.ErrResumable, err)
	}
	return wj, store, release, nil
}

// startDemoSandbox copies the demo data into dir and serves the sandbox on
// a loopback port.
func startDemoSandbox(dir string) (stop func(), url string, err error) {
	if err := fs.WalkDir(paybatch.DemoData(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		dst := filepath.Join(dir, p)
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		b, err := fs.ReadFile(paybatch.DemoData(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}); err != nil {
		return nil, "", paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("demo data: %w", err))
	}
	fb, err := os.ReadFile(filepath.Join(dir, "fixtures.json"))
	if err != nil {
		return nil, "", err
	}
	fx, err := sandbox.LoadFixtures(bytes.NewReader(fb))
	if err != nil {
		return nil, "", fmt.Errorf("demo fixtures: %w", err)
	}
	sb, err := sandbox.New(sandbox.Options{Fixtures: fx, Seed: 1, SmartRetry: srsandbox.SandboxConfig{SettleAfter: 300 * time.Millisecond}})
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("demo sandbox: %w", err)
	}
	hs := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return func() {
		sb.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}, "http://" + ln.Addr().String(), nil
}

// demoPassword is the password of every demo user. Demo only: the demo
// runs on loopback against a sandbox.
const demoPassword = "paybatch-demo"

// demoUsers are created by --demo (if missing).
var demoUsers = []struct {
	name string
	role web.Role
}{
	{"uma", web.RoleUploader}, {"alex", web.RoleApprover}, {"sam", web.RoleApprover}, {"ada", web.RoleAdmin}, {"vic", web.RoleViewer},
}

// seedDemo creates the demo users and, on a fresh data directory, the demo
// batch (uploaded by uma, awaiting approval).
func seedDemo(ctx context.Context, e *env, srv *web.Server, store web.Store) error {
	fmt.Fprintf(e.stdout, "demo users (password %q for each):", demoPassword)
	var uploader web.User
	for _, du := range demoUsers {
		u, err := store.UserByName(ctx, du.name)
		if errors.Is(err, web.ErrNotFound) {
			hash, herr := web.HashPassword(demoPassword, web.DefaultKDF)
			if herr != nil {
				return herr
			}
			u, err = store.CreateUser(ctx, web.User{Name: du.name, Role: du.role, PasswordHash: hash, CreatedAt: e.now()})
		}
		if err != nil {
			return err
		}
		if du.role == web.RoleUploader {
			uploader = u
		}
		fmt.Fprintf(e.stdout, " %s (%s)", du.name, du.role)
	}
	fmt.Fprintln(e.stdout)
	if _, n, err := store.Batches(ctx, "", 0, 0); err != nil || n > 0 {
		return err
	}
	content, err := fs.ReadFile(paybatch.DemoData(), "refunds.csv")
	if err != nil {
		return err
	}
	b, err := srv.ImportBatch(ctx, uploader, paybatch.KindRefund, "refunds.csv", "", bytes.NewReader(content))
	if err != nil {
		return err
	}
	_, err = store.Submit(ctx, b.ID, uploader.ID, false, web.AuditEvent{User: uploader.Name, Action: "submitted for approval", Detail: "demo batch", At: e.now()})
	return err
}
