package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/reconcile"
	"github.com/paybatch/paybatch/writers"
)

// paybatch journal migrate | check | export: operating a journal, a DuckDB
// file or a PostgreSQL database alike.
func newJournalCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Migrate, check or export a journal (DuckDB file or postgres:// URL)",
		Long: `Operate a journal: a DuckDB file, or a PostgreSQL database named by a
postgres:// URL (--journal, default $PAYBATCH_JOURNAL_URL). The password of a
PostgreSQL journal comes from PGPASSWORD (or ~/.pgpass), never from the URL;
a server that is not on loopback is reached over TLS only.`,
	}
	var loc string
	cmd.PersistentFlags().StringVar(&loc, "journal", "", "the journal: a DuckDB file or a postgres:// URL (default $PAYBATCH_JOURNAL_URL)")
	where := func() (string, error) {
		if loc == "" {
			loc = e.getenv(job.JournalURLVar)
		}
		if loc == "" {
			return "", paybatch.WithKind(paybatch.ErrUsage, errors.New("give --journal FILE|URL (or set PAYBATCH_JOURNAL_URL)"))
		}
		return loc, nil
	}

	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the journal's schema to this paybatch's version",
		Long: `Apply the numbered migrations this paybatch knows and the journal has not had
(each run opens a journal this way anyway; migrate does it ahead of a rollout).
Several processes may migrate one PostgreSQL journal at once: each migration is
applied once.`,
		Example: `  PGPASSWORD=... paybatch journal migrate --journal postgres://paybatch@db.internal/payments`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc, err := where()
			if err != nil {
				return err
			}
			return journalMigrate(cmd.Context(), e, loc)
		},
	}
	check := &cobra.Command{
		Use:   "check",
		Short: "Check the journal: schema, states, rows needing a person, leases",
		Long: `Check the journal: its schema version against this paybatch's, rows by state,
states paybatch does not know, rows left "sending" longer than the providers'
24 h replay window (they must be checked by hand before any resend), and, for
PostgreSQL, the credentials' leases. Exit 1 when something needs a person.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc, err := where()
			if err != nil {
				return err
			}
			return journalCheck(cmd.Context(), e, loc)
		},
	}
	var out string
	export := &cobra.Command{
		Use:   "export --out FILE.parquet",
		Short: "Export the journal (its journal_export view) to Parquet",
		Long: `Write every journal row (the journal_export view: latest state per key) to a
Parquet file, card numbers masked. A PostgreSQL journal is read in one COPY
(one snapshot) while runs may be writing it.`,
		Example: `  paybatch journal export --journal out/journal.duckdb --out journal.parquet`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc, err := where()
			if err != nil {
				return err
			}
			if out == "" {
				return paybatch.WithKind(paybatch.ErrUsage, errors.New("journal export: --out FILE.parquet is required"))
			}
			return journalExport(cmd.Context(), e, loc, out)
		},
	}
	export.Flags().StringVar(&out, "out", "", "the Parquet file to write")
	cmd.AddCommand(migrate, check, export)
	return cmd
}

func openAnyJournal(ctx context.Context, loc string) (journal.Journal, error) {
	if postgres.IsURL(loc) {
		j, err := postgres.Open(ctx, loc, postgres.Options{})
		if errors.Is(err, postgres.ErrURL) {
			return nil, paybatch.WithKind(paybatch.ErrConfig, err)
		}
		return j, err
	}
	if _, err := os.Stat(loc); err != nil {
		return nil, paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("journal: %w", err))
	}
	j, err := journal.OpenDuckDB(ctx, loc, journal.Options{})
	if errors.Is(err, journal.ErrLocked) {
		return nil, paybatch.WithKind(paybatch.ErrLocked, err)
	}
	if err != nil {
		return nil, paybatch.WithKind(paybatch.ErrInput, err)
	}
	return j, nil
}

func journalMigrate(ctx context.Context, e *env, loc string) error {
	if postgres.IsURL(loc) {
		j, err := openAnyJournal(ctx, loc) // opening migrates
		if err != nil {
			return err
		}
		defer j.Close()
		v, err := j.(*postgres.Journal).Version(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "journal %s: schema version %d (this paybatch: %d)\n", j.Name(), v, postgres.SchemaVersion())
		return nil
	}
	j, err := openAnyJournal(ctx, loc) // opening a DuckDB journal migrates it
	if err != nil {
		return err
	}
	defer j.Close()
	fmt.Fprintf(e.stdout, "journal %s: schema version %d\n", j.Name(), journal.SchemaVersion())
	return nil
}

var knownStates = map[paybatch.State]bool{paybatch.StatePending: true, paybatch.StateSending: true, paybatch.StateAccepted: true,
	paybatch.StateDeclined: true, paybatch.StateRejected: true, paybatch.StateConflict: true, paybatch.StateFailed: true, paybatch.StateFinal: true}

func journalCheck(ctx context.Context, e *env, loc string) error {
	j, err := openAnyJournal(ctx, loc)
	if err != nil {
		return err
	}
	defer j.Close()
	var problems []string
	if pj, ok := j.(*postgres.Journal); ok {
		v, err := pj.Version(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "schema version %d (this paybatch: %d)\n", v, postgres.SchemaVersion())
		leases, err := pj.Leases(ctx)
		if err != nil {
			return err
		}
		for _, l := range leases {
			st := "held until " + l.ExpiresAt.Format(time.RFC3339)
			if l.Expired {
				st = "expired (its holder stopped renewing it; the next run takes it over)"
			}
			fmt.Fprintf(e.stdout, "lease %s: %s, epoch %d, %s\n", l.Credential, l.Holder, l.Epoch, st)
		}
	}
	counts, err := j.Counts(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, c := range counts {
		total += c.Rows
		fmt.Fprintf(e.stdout, "%-10s %-8s %-9s %-10s %d\n", c.Provider, c.Kind, c.State, c.Outcome, c.Rows)
		if !knownStates[c.State] {
			problems = append(problems, fmt.Sprintf("%d rows in unknown state %q", c.Rows, c.State))
		}
	}
	fmt.Fprintf(e.stdout, "%d rows\n", total)
	sending, err := j.Rows(ctx, journal.Query{States: []paybatch.State{paybatch.StateSending}})
	if err != nil {
		return err
	}
	for _, r := range sending {
		if !r.SentAt.IsZero() && e.now().Sub(r.SentAt) > 23*time.Hour {
			problems = append(problems, fmt.Sprintf("%s (%s row %d): sending since %s, beyond the providers' 24 h replay window: check it with the provider before any resend",
				r.MerchantTxID, r.Source.File, r.Source.Row, r.SentAt.Format(time.RFC3339)))
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(e.stdout, "problem:", p)
		}
		return paybatch.WithKind(paybatch.ErrExceptions, fmt.Errorf("journal %s: %d problem(s)", j.Name(), len(problems)))
	}
	fmt.Fprintln(e.stdout, "ok")
	return nil
}

// journalExport loads journal_export into an in-memory DuckDB table and
// writes it to Parquet, text masked as reconcile masks it (reconcile.MaskSQL:
// paybatch.MaskCardNumbers).
func journalExport(ctx context.Context, e *env, loc, out string) error {
	db, err := sql.Open("duckdb", "?autoinstall_known_extensions=false&autoload_known_extensions=false")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := reconcile.MaskSQL(ctx, conn); err != nil {
		return fmt.Errorf("journal export: %w", err)
	}
	var ddl []string
	for _, c := range postgres.ExportColumns {
		ddl = append(ddl, c.Name+" "+c.Type.DuckDBType())
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE journal_export (`+strings.Join(ddl, ", ")+`)`); err != nil {
		return err
	}
	if postgres.IsURL(loc) {
		j, err := openAnyJournal(ctx, loc)
		if err != nil {
			return err
		}
		defer j.Close()
		// reconcile's path (CopyTable): the COPY's lines split and cast by DuckDB
		if _, err := j.(*postgres.Journal).CopyTable(ctx, conn, "memory", "journal_export", "journal_export", postgres.ExportColumns); err != nil {
			return err
		}
	} else {
		if err := upgradeJournal(ctx, loc); err != nil {
			if errors.Is(err, journal.ErrLocked) { // a run or serve holds it
				return paybatch.WithKind(paybatch.ErrLocked, err)
			}
			return paybatch.WithKind(paybatch.ErrInput, err)
		}
		if _, err := conn.ExecContext(ctx, `ATTACH `+sqlLiteral(loc)+` AS journal_db (READ_ONLY)`); err != nil {
			return paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("journal %s: %w", loc, err))
		}
		var cols []string
		for _, c := range postgres.ExportColumns {
			cols = append(cols, c.Name)
		}
		_, err := conn.ExecContext(ctx, `INSERT INTO journal_export SELECT `+strings.Join(cols, ", ")+` FROM journal_db.journal_export`)
		conn.ExecContext(context.WithoutCancel(ctx), `DETACH journal_db`)
		if err != nil {
			return fmt.Errorf("journal %s: %w", loc, err)
		}
	}
	var sel []string
	for _, c := range postgres.ExportColumns {
		if c.Type == postgres.Varchar {
			sel = append(sel, "mask_cards("+c.Name+") AS "+c.Name)
		} else {
			sel = append(sel, c.Name)
		}
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if _, err := conn.ExecContext(ctx, `COPY (SELECT `+strings.Join(sel, ", ")+` FROM journal_export ORDER BY key) TO `+
		sqlLiteral(tmp)+` (FORMAT parquet)`); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal export %s: %w", out, err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM journal_export`).Scan(&n); err != nil {
		return err
	}
	if err := writers.PlaceFile(tmp, out); err != nil {
		return err
	}
	e.say("exported %d journal rows to %s", n, out)
	return nil
}

func sqlLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
