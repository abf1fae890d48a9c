package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
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
		return nil, errors.New("--quiet and --verbose contradict each other; pick one")
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

// maskWriter passes everything written through paybatch.MaskCardNumbers, the
// one masking rule, so no card number reaches stdout, stderr or the log
// whichever line printed it. slog handlers, fmt and tabwriter write whole
// lines per call, so a number is never split across two writes.
type maskWriter struct{ w io.Writer }

func masked(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	if _, ok := w.(maskWriter); ok {
		return w
	}
	return maskWriter{w}
}

func (m maskWriter) Write(p []byte) (int, error) {
	s := string(p)
	if ms := paybatch.MaskCardNumbers(s); ms != s {
		_, err := io.WriteString(m.w, ms)
		return len(p), err
	}
	return m.w.Write(p)
}

// Fd lets isTerminal see the terminal behind the mask.
func (m maskWriter) Fd() uintptr {
	if f, ok := m.w.(interface{ Fd() uintptr }); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

// errorLine is how main prints the error that ends a run: masked like
// every other line.
func errorLine(err error) string {
	return "paybatch: " + paybatch.MaskCardNumbers(err.Error())
}
