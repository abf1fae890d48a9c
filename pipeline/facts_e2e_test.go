package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
)

// TestFactsThatDecideAPaymentReachTheJournal reproduces issue #16 finding
// 7 against the sandbox over HTTP: the collection date SmarterPay actually
// uses, a Bacs failure's code with its description, a SmartRetry decline's
// reason at submit, and no reason on an approved row.
func TestFactsThatDecideAPaymentReachTheJournal(t *testing.T) {
	ctx := context.Background()

	// SmarterPay: a date too soon is rolled forward to the next collectable
	// banking day; …51 fails ARUDD 0.
	spURL, _, _ := spSandbox(t, "")
	pacer := pipeline.NewPacer(fastLimits)
	j := openJournal(t, t.TempDir()+"/dd.duckdb")
	today := smarterpay.Today(time.Now())
	ins := ddPayments(2)
	ins[0].CollectionDate = today // never collectable today: Bacs needs 3 clear banking days
	ins[1].Amount.Minor = 1251    // the sandbox's ARUDD 0 trigger
	if _, err := pipeline.Submit(ctx, j, spClient(t, spURL, pacer), seqOf(ins), testConfig(pacer)); err != nil {
		t.Fatal(err)
	}
	rows := byID(t, j)
	want, _, err := smarterpay.NewCalendar().Collectable(today, today)
	if err != nil {
		t.Fatal(err)
	}
	if r := rows[ins[0].MerchantTxID]; !r.ProviderDate.Equal(want) || r.ProviderDate.Equal(today) {
		t.Errorf("provider date %v, want %v (requested %v)", r.ProviderDate, want, today)
	}
	if r := rows[ins[1].MerchantTxID]; r.Outcome != paybatch.OutcomeFailed || r.ReasonCode != "ARUDD 0" || r.Problem != "Refer to payer" {
		t.Errorf("bounced payment: outcome %s reason %q problem %q", r.Outcome, r.ReasonCode, r.Problem)
	}
	if r := rows[ins[0].MerchantTxID]; r.ReasonCode != "" || r.Problem != "" {
		t.Errorf("collected payment shows a reason: %q %q", r.ReasonCode, r.Problem)
	}

	// SmartRetry: a decline at submit (…51) has its reason code and
	// description; an approved refund has none (AUTH.APPROVED is no reason).
	ts := sandboxtest.NewServer(t, sandbox.Options{Seed: 7, Fixtures: saleFixtures(2), SmartRetry: fastSandbox()})
	pacer = pipeline.NewPacer(fastLimits)
	j = openJournal(t, t.TempDir()+"/cards.duckdb")
	refunds := refundsOf(2, 1)
	if _, err := pipeline.Submit(ctx, j, newClient(t, ts.URL, pacer, nil), seqOf(refunds), testConfig(pacer)); err != nil {
		t.Fatal(err)
	}
	rows = byID(t, j)
	if r := rows[refunds[1].MerchantTxID]; r.State != paybatch.StateDeclined || r.ReasonCode != "PROCESSOR.DECLINED" || r.Problem == "" {
		t.Errorf("declined refund: state %s reason %q problem %q", r.State, r.ReasonCode, r.Problem)
	}
	if r := rows[refunds[0].MerchantTxID]; r.Outcome != paybatch.OutcomeSucceeded || r.ReasonCode != "" || r.Problem != "" {
		t.Errorf("approved refund: outcome %s reason %q problem %q", r.Outcome, r.ReasonCode, r.Problem)
	}
}

func byID(t *testing.T, j journal.Journal) map[string]*journal.Row {
	t.Helper()
	rows, err := j.Rows(context.Background(), journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*journal.Row, len(rows))
	for _, r := range rows {
		out[r.MerchantTxID] = r
	}
	return out
}
