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
		os.Exit(int(paybatch.ExitAborted))
	}()
	err := run(ctx, os.Args[1:], env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "paybatch:", err)
	}
	os.Exit(int(paybatch.CodeOf(err)))
}
