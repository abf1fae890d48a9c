package pipeline

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// rowsOf turns instructions into the pending journal rows Ingest takes,
// refusing a second provider in one run, and records the run's provider.
func rowsOf(ctx context.Context, p Provider, src iter.Seq2[paybatch.Instruction, error], now time.Time,
	provider *paybatch.Provider) iter.Seq2[*journal.Row, error] {
	return func(yield func(*journal.Row, error) bool) {
		for ins, err := range src {
			if err != nil {
				yield(nil, fmt.Errorf("reading instructions: %w", err))
				return
			}
			if ctx.Err() != nil {
				yield(nil, fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err()))
				return
			}
			if ins.Provider == "" {
				ins.Provider = ins.Kind.Provider()
			}
			if *provider == "" {
				*provider = ins.Provider
			} else if ins.Provider != *provider {
				yield(nil, fmt.Errorf("%s: provider %s in a %s run: submit one provider at a time", ins.Source, ins.Provider, *provider))
				return
			}
			if !yield(newRow(p, ins, now), nil) {
				return
			}
		}
	}
}

// newRow is the pending journal row of an instruction.
func newRow(p Provider, in paybatch.Instruction, now time.Time) *journal.Row {
	row := &journal.Row{Key: Key(in), Provider: in.Provider, Kind: in.Kind, Account: in.Account(), MerchantTxID: in.MerchantTxID,
		Amount: in.Amount, State: paybatch.StatePending, Source: in.Source, CreatedAt: now, UpdatedAt: now,
		Terminal: in.Terminal, TransactionRef: in.TransactionRef, OrderRef: in.OrderRef,
		Mandate: in.Mandate, Auddis: in.Auddis, BankAccount: in.BankAccount, CollectionDate: in.CollectionDate,
		Description: in.Description, DefaultNarrative: in.DefaultNarrative}
	req, err := p.Prepare(in)
	if err != nil {
		// The provider cannot express this row; journal it as rejected so
		// it is reported, never sent.
		row.State = paybatch.StateRejected
		row.Problem = "prepare: " + err.Error()
		return row
	}
	row.Method, row.Path, row.Body = req.Method, req.Path, req.Body
	row.BodySHA256 = bodyHash(req.Body)
	return row
}
