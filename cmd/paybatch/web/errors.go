package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/paybatch/paybatch"
)

// Errors handlers return besides the store's.
var (
	ErrForbidden = errors.New("your role does not allow this")
	errSignIn    = errors.New("sign in first")
	errThrottled = errors.New("too many failed sign-ins: wait a few minutes and try again")
	errBadLogin  = errors.New("wrong user name or password")
	errBadInput  = errors.New("bad input")
)

// inputError is a problem with what the user sent, shown to them as is.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }
func (e *inputError) Unwrap() error { return errBadInput }

func badInput(format string, args ...any) error {
	return &inputError{fmt.Sprintf(format, args...)}
}

// statusOf maps every error a handler can return to its HTTP status, in
// one place. Anything not named here is a 500 whose detail is logged, never
// shown.
func statusOf(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errSignIn):
		return http.StatusUnauthorized
	case errors.Is(err, errBadLogin):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrSelfApproval):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrStateChanged), errors.Is(err, ErrAlreadyDecided), errors.Is(err, ErrExists):
		return http.StatusConflict
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, paybatch.ErrUnusableFile), errors.Is(err, paybatch.ErrMissingColumn):
		return http.StatusUnprocessableEntity
	case errors.Is(err, errBadInput):
		return http.StatusBadRequest
	case errors.Is(err, errThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, context.Canceled):
		return 499 // the client went away; nothing is written
	}
	return http.StatusInternalServerError
}

// publicMessage is what the error page says. Server faults say only that
// they happened (the detail is in the log); everything else is the user's to
// read, with card numbers masked.
func publicMessage(err error, status int) string {
	var mbe *http.MaxBytesError
	switch {
	case status == http.StatusInternalServerError:
		return "Something went wrong on the server. Nothing was sent by this request; the details are in the server log."
	case errors.As(err, &mbe):
		return fmt.Sprintf("The file is larger than the %d-byte limit for an upload. Split the batch, or ask an admin to raise --max-upload.", mbe.Limit)
	}
	return paybatch.MaskCardNumbers(err.Error())
}
