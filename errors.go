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
	// MerchantTxID is the row's merchant_transaction_id when it could be
	// read, so a rejected row still reconciles against its ledger line.
	MerchantTxID string
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

// ErrorKind classifies a failure by what the user has to do next. Each kind
// is itself an error, so a package can wrap it where the failure starts —
// fmt.Errorf("%w: %s is not a URL", paybatch.ErrConfig, v) — or mark an error
// it did not make with WithKind. Callers branch with errors.Is; the command
// maps KindOf(err) to an exit code in one place.
type ErrorKind uint8

const (
	// ErrUsage: wrong flags or arguments; nothing was done.
	ErrUsage ErrorKind = iota + 1
	// ErrInput: an input file cannot be used as it is; nothing was sent.
	ErrInput
	// ErrConfig: the configuration is wrong (job file, endpoint, credential
	// variable); nothing was sent under it.
	ErrConfig
	// ErrExceptions: the work finished, and rows or ids need attention
	// (rejects, declines, conflicts, reconciliation exceptions).
	ErrExceptions
	// ErrResumable: stopped part-way (signal, refused credential, outage,
	// full disk); the journal is consistent and running again resumes.
	ErrResumable
	// ErrLocked: another run holds the journal; this one did nothing.
	ErrLocked
)

var kindNames = [...]string{
	ErrUsage:      "usage error",
	ErrInput:      "input error",
	ErrConfig:     "configuration error",
	ErrExceptions: "finished with exceptions",
	ErrResumable:  "stopped before the end (resumable)",
	ErrLocked:     "journal locked by another run",
}

func (k ErrorKind) Error() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("error kind %d", k)
}

// kindError gives an error a kind without changing its message.
type kindError struct {
	kind ErrorKind
	err  error
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() error        { return e.err }
func (e *kindError) Is(target error) bool { return target == e.kind }

// WithKind marks err as being of kind k; its message is unchanged. It
// returns nil when err is nil.
func WithKind(k ErrorKind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}

// KindOf returns the outermost kind in err's chain: the one given closest to
// the caller wins, so a layer that knows more (say, that sending had begun)
// can reclassify what it passes on. It returns 0 for nil or an error with no
// kind.
func KindOf(err error) ErrorKind {
	for err != nil {
		switch e := err.(type) {
		case ErrorKind:
			return e
		case *kindError:
			return e.kind
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if k := KindOf(inner); k != 0 {
					return k
				}
			}
			return 0
		}
		err = errors.Unwrap(err)
	}
	return 0
}
