package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/paybatch/paybatch"
)

// diskFull reports whether err says the file system is out of space. DuckDB
// reports it in its own words, so the text is checked as well as the errno.
func diskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "disk quota exceeded") ||
		strings.Contains(msg, "not enough space")
}

// errDiskFull is what a full disk looks like to the user: no driver
// internals, what to do, and that nothing is lost.
func errDiskFull(where string) error {
	return paybatch.WithKind(paybatch.ErrResumable, fmt.Errorf(
		"the disk holding %s is full: free some space and run the same command again — the journal is consistent and resuming sends nothing twice", where))
}

// classifyIO gives err, from a step on the file where, kind k — unless it
// is a full disk or an interruption, which are resumable whatever the step
// (a full disk is said in plain words, without the driver's).
func classifyIO(k paybatch.ErrorKind, where string, err error) error {
	switch {
	case err == nil:
		return nil
	case diskFull(err):
		return errDiskFull(where)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return paybatch.WithKind(paybatch.ErrResumable, err)
	}
	return paybatch.WithKind(k, err)
}
