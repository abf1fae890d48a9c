package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// logFlags are the output conventions shared by every command.
type logFlags struct {
	quiet, verbose bool
	format         string
}

func (f *logFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.BoolVarP(&f.quiet, "quiet", "q", false, "print only errors")
	pf.BoolVarP(&f.verbose, "verbose", "v", false, "print debug detail (never secrets)")
	pf.StringVar(&f.format, "log-format", "text", "log line format on stderr: text or json")
}

// logger builds the slog logger for stderr from the flags.
func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	level := slog.LevelInfo
	switch {
	case f.quiet && f.verbose:
		return nil, fmt.Errorf("--quiet and --verbose contradict each other; pick one")
	case f.quiet:
		level = slog.LevelError
	case f.verbose:
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", f.format)
}
