// Command paybatch moves money in bulk and proves where it went: it reads
// refund and direct-debit batches, submits them exactly once, polls the
// providers for final statuses, reconciles them with the merchant's ledger in
// DuckDB and writes the report finance opens.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/paybatch/paybatch"
)

// Exit statuses, the same for every command (root.go's help lists them).
const (
	exitOK         = 0 // clean
	exitExceptions = 1 // finished, with rejects, declines, conflicts or reconcile exceptions
	exitUsage      = 2 // usage, input or configuration error: nothing was done
	exitResumable  = 3 // stopped part-way (signal, credential, outage, full disk): run again to resume
	exitLocked     = 4 // another run holds the journal lock
)

// exitCode maps an error's kind to the exit status: the one place that does.
// An error without a kind is never "nothing was done": it may have come after
// sending began, so it exits 3 and the user runs again, which is safe.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	switch paybatch.KindOf(err) {
	case paybatch.ErrExceptions:
		return exitExceptions
	case paybatch.ErrUsage, paybatch.ErrInput, paybatch.ErrConfig:
		return exitUsage
	case paybatch.ErrLocked:
		return exitLocked
	default: // paybatch.ErrResumable and anything unclassified
		return exitResumable
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal exits at once; the journal is safe because every
		// state is written before the request it describes leaves.
		<-ctx.Done()
		stop()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		fmt.Fprintln(os.Stderr, "paybatch: second signal, exiting now (the journal is consistent; re-run to resume)")
		os.Exit(exitResumable)
	}()
	alloc := duckAllocatorOf(os.Getenv)
	err := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
		paced: (&oneCore{lazy: alloc.lazily}).paced, boundGo: alloc.boundGoMemory})
	if err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
	}
	os.Exit(exitCode(err))
}
