package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/cmd/paybatch/web"
)

// envPassword may carry a new password for `paybatch user` (scripts); a
// terminal is prompted without echo; otherwise the first line of stdin.
const envPassword = "PAYBATCH_PASSWORD"

func newUserCmd(e *env) *cobra.Command {
	var dataDir, journalLoc string
	cmd := &cobra.Command{
		Use:   "user add|disable|enable|reset-password",
		Short: "Manage the web app's users from the command line (the first admin, a lost password)",
		Long: `user manages the accounts of 'paybatch serve', in the data directory's journal.
Passwords are never flags: they are read from $PAYBATCH_PASSWORD, else from the
terminal without echo, else from the first line of stdin. Every change signs
the user out everywhere. Stop the server first (it holds the journal), or use
its admin page. A server on a PostgreSQL journal (serve --journal postgres://…,
or PAYBATCH_JOURNAL_URL) shares it: give the same --journal while it runs.`,
		Example: `  paybatch user add ada --role admin --data-dir /var/lib/paybatch
  printf '%s\n' "$NEW_PASSWORD" | paybatch user reset-password uma --data-dir /var/lib/paybatch
  paybatch user disable uma --data-dir /var/lib/paybatch`,
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "paybatch-data", "the server's data directory")
	cmd.PersistentFlags().StringVar(&journalLoc, "journal", "", "the server's journal, as serve --journal (default DATA_DIR/journal.duckdb, or $"+job.JournalURLVar+")")
	var role string
	add := &cobra.Command{
		Use:   "add NAME --role viewer|uploader|approver|admin",
		Short: "Create a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := web.ParseRole(role)
			if err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--role: %w", err))
			}
			if err := web.ValidUserName(args[0]); err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, err)
			}
			pw, err := readNewPassword(e)
			if err != nil {
				return err
			}
			return withStore(cmd.Context(), serverJournal(e, journalLoc, dataDir), func(s web.Store) error {
				hash, err := web.HashPassword(pw, web.DefaultKDF)
				if err != nil {
					return err
				}
				if _, err := s.CreateUser(cmd.Context(), web.User{Name: args[0], Role: r, PasswordHash: hash, CreatedAt: e.now()}); err != nil {
					return err
				}
				_ = s.Audit(cmd.Context(), web.AuditEvent{User: "(command line)", Action: "user added", Detail: fmt.Sprintf("%s as %s", args[0], r), At: e.now()})
				fmt.Fprintf(e.stdout, "user %s added as %s\n", args[0], r)
				return nil
			})
		},
	}
	add.Flags().StringVar(&role, "role", "", "viewer, uploader, approver or admin (required)")
	_ = add.MarkFlagRequired("role")

	change := func(use, short, done string, fn func(u *web.User) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				// Ask for a password before taking the journal.
				if err := fn(nil); err != nil {
					return err
				}
				return withStore(cmd.Context(), serverJournal(e, journalLoc, dataDir), func(s web.Store) error {
					u, err := s.UserByName(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if err := fn(&u); err != nil {
						return err
					}
					if err := s.UpdateUser(cmd.Context(), u); err != nil {
						return err
					}
					_ = s.Audit(cmd.Context(), web.AuditEvent{User: "(command line)", Action: "user changed", Detail: u.Name + ": " + done + " (sessions revoked)", At: e.now()})
					fmt.Fprintf(e.stdout, "user %s: %s; signed out everywhere\n", u.Name, done)
					return nil
				})
			},
		}
	}
	var newPW string
	cmd.AddCommand(add,
		change("disable", "Disable a user (signs them out)", "disabled", func(u *web.User) error {
			if u != nil {
				u.Disabled = true
			}
			return nil
		}),
		change("enable", "Enable a disabled user", "enabled", func(u *web.User) error {
			if u != nil {
				u.Disabled = false
			}
			return nil
		}),
		change("reset-password", "Set a new password (signs the user out)", "password reset", func(u *web.User) error {
			if u == nil {
				var err error
				newPW, err = readNewPassword(e)
				return err
			}
			h, err := web.HashPassword(newPW, web.DefaultKDF)
			u.PasswordHash = h
			return err
		}),
	)
	for _, c := range append([]*cobra.Command{cmd}, cmd.Commands()...) {
		c.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
			if strings.Contains(err.Error(), "password") {
				return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("passwords are never taken from flags (they leak into shell history and process lists): set %s or type it when asked", envPassword))
			}
			return paybatch.WithKind(paybatch.ErrUsage, err)
		})
	}
	return cmd
}

func readNewPassword(e *env) (string, error) {
	pw := e.getenv(envPassword)
	if pw == "" {
		if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprint(e.stderr, "New password: ")
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(e.stderr)
			if err != nil {
				return "", paybatch.WithKind(paybatch.ErrUsage, err)
			}
			pw = string(b)
		} else {
			line, err := bufio.NewReader(e.stdin).ReadString('\n')
			if err != nil && line == "" {
				return "", paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("no password: set %s or give it on the first line of stdin", envPassword))
			}
			pw = strings.TrimRight(line, "\r\n")
		}
	}
	if err := web.CheckPassword(pw); err != nil {
		return "", paybatch.WithKind(paybatch.ErrUsage, err)
	}
	return pw, nil
}

// withStore opens the data directory's journal (exit 4 when the server
// holds it) and runs fn on the web store in it.
func withStore(ctx context.Context, loc string, fn func(web.Store) error) error {
	_, s, release, err := openServerJournal(ctx, loc)
	if err != nil {
		if paybatch.KindOf(err) == paybatch.ErrLocked {
			return fmt.Errorf("%w; the server holds it: stop it, or use its admin page", err)
		}
		return err
	}
	defer release()
	err = fn(s)
	if errors.Is(err, web.ErrNotFound) || errors.Is(err, web.ErrExists) {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}
	return err
}
