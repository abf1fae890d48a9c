package paybatch

import (
	"errors"
	"fmt"
)

// Sentinel errors. Row- and file-level errors wrap one of these so callers
// can branch with errors.Is.
var (
	ErrBadAmount        = errors.New("bad amount")
	ErrBadCurrency      = errors.New("bad currency")
	ErrCurrencyMismatch = errors.New("currency mismatch")
	ErrBadDate          = errors.New("bad date")
	ErrBadField         = errors.New("bad field")
	ErrMissingField     = errors.New("missing value")
	ErrDuplicateID      = errors.New("duplicate merchant_transaction_id")
	ErrMissingColumn    = errors.New("missing required column")
	ErrUnusableFile     = errors.New("unusable file")
)

// RowError is one rejected cell or row: where it is, what it held and why it
// was refused. Row numbers are as the user sees them (the spreadsheet row or
// the CSV line number of the record, header = row 1).
type RowError struct {
	Source Source
	Column string // the header as it appears in the file ("" for a row-level reason)
	Value  string
	Err    error
}

func (e *RowError) Error() string {
	loc := e.Source.String()
	if e.Column != "" {
		loc += fmt.Sprintf(", column %q", e.Column)
	}
	if e.Value != "" || e.Column != "" {
		loc += fmt.Sprintf(", value %q", e.Value)
	}
	return loc + ": " + e.Err.Error()
}

func (e *RowError) Unwrap() error { return e.Err }

// Source says where an instruction or ledger line came from.
type Source struct {
	File  string
	Sheet string // "" for CSV
	Row   int    // 1-based row as shown by a spreadsheet program or line in a CSV
}

func (s Source) String() string {
	out := s.File
	if s.Sheet != "" {
		out += fmt.Sprintf(" sheet %q", s.Sheet)
	}
	if s.Row > 0 {
		out += fmt.Sprintf(" row %d", s.Row)
	}
	return out
}

// ExitCode is the process exit status shared by every command.
type ExitCode int

const (
	ExitOK         ExitCode = 0 // clean
	ExitExceptions ExitCode = 1 // finished, with rejects, declines, conflicts or reconcile exceptions
	ExitUsage      ExitCode = 2 // usage, input or config error: nothing was done
	ExitAborted    ExitCode = 3 // aborted (signal, auth failure, provider outage); resumable
	ExitLocked     ExitCode = 4 // another run holds the journal lock
)

// ExitError carries the exit code a command wants, wrapping the cause.
type ExitError struct {
	Code ExitCode
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit wraps err with an exit code.
func Exit(code ExitCode, err error) error { return &ExitError{Code: code, Err: err} }

// CodeOf returns the exit code for err: nil → 0, *ExitError → its code, anything else → 2.
func CodeOf(err error) ExitCode {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitUsage
}
