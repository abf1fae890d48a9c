package pipeline_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// Writes pipeline/journal/testdata/v0.duckdb with the pre-migration code.
func TestWriteV0Fixture(t *testing.T) {
	out := os.Getenv("PAYBATCH_V0_FIXTURE")
	if out == "" {
		t.Skip()
	}
	ctx := context.Background()
	os.Remove(out)
	n := 30
	ts := sandbox.NewTestServer(t, sandbox.Options{Seed: 1, Fixtures: saleFixtures(n), SmartRetry: fastSandbox()})
	pacer := pipeline.NewPacer(fastLimits)
	c := newClient(t, ts.URL, pacer, nil)
	j, err := pipeline.OpenJournal(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	ins := refundsOf(n, 3) // rf-00003 declined
	ins[6].Amount.Minor = 20000 // above the original: 409 REFUND_EXCEEDS_ORIGINAL
	ins[7].TransactionRef = "TXNOPE00" // 404: rejected
	cfg := testConfig(pacer)
	// A: rows 0..9 submitted and polled to final.
	if _, err := pipeline.Submit(ctx, j, c, seqOf(ins[:10]), cfg); err != nil {
		t.Fatal(err)
	}
	// B: rows 10..14 submitted, not polled: accepted.
	cfg.NoPoll = true
	if _, err := pipeline.Submit(ctx, j, c, seqOf(ins[10:15]), cfg); err != nil {
		t.Fatal(err)
	}
	// C: an edited rerun of A: a conflict recorded.
	edited := append([]paybatch.Instruction(nil), ins[:10]...)
	edited[1].Amount.Minor = 1234
	if _, err := pipeline.Submit(ctx, j, c, seqOf(edited), cfg); err != nil {
		t.Fatal(err)
	}
	// D: rows 15..19 under a refused credential, one at a time: the first
	// is left sending, the rest pending.
	bad, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: ts.URL, APIKey: "wrong-key", HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	cfgD := testConfig(pacer)
	cfgD.Concurrency, cfgD.MaxConcurrency = 1, 1
	if _, err := pipeline.Submit(ctx, j, bad, seqOf(ins[15:20]), cfgD); err == nil {
		t.Fatal("want auth error")
	}
	// E: rf-00020 sent with other content from another journal first: the
	// provider answers 409 and the row is a conflict.
	other, err := pipeline.OpenJournal(ctx, t.TempDir()+"/other.duckdb")
	if err != nil {
		t.Fatal(err)
	}
	changed := append([]paybatch.Instruction(nil), ins[20])
	changed[0].Amount.Minor = 999
	if _, err := pipeline.Submit(ctx, other, c, seqOf(changed), cfg); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := pipeline.Submit(ctx, j, c, seqOf(ins[20:21]), cfg); err != nil {
		t.Fatal(err)
	}
	if err := j.RecordRejects(ctx, []pipeline.Reject{
		{Source: paybatch.Source{File: "refunds.csv", Row: 40}, Column: "amount", Value: "10.001", Reason: "amount: more decimals than USD allows", MerchantTxID: "rf-00040"},
		{Source: paybatch.Source{File: "refunds.csv", Row: 41}, Column: "merchant_transaction_id", Value: "4111 1111 1111 1111", Reason: "bad id \"4111111111111111\""},
	}); err != nil {
		t.Fatal(err)
	}
	if err := j.RecordInput(ctx, pipeline.Input{Path: "refunds.csv", SHA256: strings.Repeat("ab", 32), Rows: 22, Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry}, time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// A killed poll leaves its state changes as events, unfolded: row
	// rf-00010 (accepted) learnt it is final.
	db, err := sql.Open("duckdb", out)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO journal_events SELECT 1, key, 'final', 'succeeded', 'APPROVED', provider_id, order_id,
		reason_code, problem, http_status, attempts, updated_at + INTERVAL 1 MINUTE, sent_at, provider_amount_minor, provider_date,
		replayed, polls + 1, updated_at + INTERVAL 1 MINUTE, updated_at + INTERVAL 1 MINUTE FROM journal WHERE merchant_transaction_id = 'rf-00010'`); err != nil {
		t.Fatal(err)
	}
	dump := func(w *strings.Builder, db *sql.DB) {
		for _, q := range []string{`SELECT * FROM journal ORDER BY key`, `SELECT * FROM rejects ORDER BY ALL`,
			`SELECT * FROM conflicts ORDER BY ALL`, `SELECT * FROM inputs ORDER BY ALL`} {
			rs, err := db.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rs.Columns()
			fmt.Fprintln(w, strings.Join(cols, "|"))
			for rs.Next() {
				v := make([]any, len(cols))
				p := make([]any, len(cols))
				for i := range v {
					p[i] = &v[i]
				}
				rs.Scan(p...)
				for i := range v {
					if tm, ok := v[i].(time.Time); ok {
						v[i] = tm.UTC().Format(time.RFC3339Nano)
					}
					if b, ok := v[i].([]byte); ok {
						v[i] = string(b)
					}
				}
				f := make([]string, len(v))
				for i := range v {
					f[i] = fmt.Sprint(v[i])
				}
				fmt.Fprintln(w, strings.Join(f, "|"))
			}
			rs.Close()
		}
	}
	defer func() {
		db.Close()
		// The old code's reading of it: the event folded when opened.
		tmp := t.TempDir() + "/copy.duckdb"
		b, _ := os.ReadFile(out)
		os.WriteFile(tmp, b, 0o600)
		if wal, err := os.ReadFile(out + ".wal"); err == nil {
			os.WriteFile(tmp+".wal", wal, 0o600)
		}
		j, err := pipeline.OpenJournal(ctx, tmp)
		if err != nil {
			t.Fatal(err)
		}
		var w strings.Builder
		dump(&w, j.DB())
		j.Close()
		os.WriteFile(strings.TrimSuffix(out, ".duckdb")+".expected.txt", []byte(w.String()), 0o644)
	}()
	for _, q := range []string{`SELECT state, outcome, count(*) FROM journal GROUP BY ALL ORDER BY ALL`,
		`SELECT 'events', count(*) FROM journal_events`, `SELECT 'rejects', count(*) FROM rejects`,
		`SELECT 'conflicts', count(*) FROM conflicts`, `SELECT 'inputs', count(*) FROM inputs`} {
		rs, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			v := make([]any, len(cols))
			p := make([]any, len(cols))
			for i := range v {
				p[i] = &v[i]
			}
			rs.Scan(p...)
			t.Log(fmt.Sprint(v...))
		}
		rs.Close()
	}
}
