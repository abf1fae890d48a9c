package journal

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/paybatch/paybatch"
)

// TestPagesWhileChangesWaitToBeFolded reads a page of a large file's rows
// while many state changes wait to be folded (a batch being sent: 240,000
// events), inside a 40 MB memory limit: the read looks for the latest
// event of the rows it reads only. Reproduction: numbering every event of
// the journal for a page of fifty rows failed with "Out of Memory" here
// (and a 1M-row send's 600,000 unfolded events failed so at the journal's
// 128 MB).
func TestPagesWhileChangesWaitToBeFolded(t *testing.T) {
	ctx := context.Background()
	j, err := OpenDuckDB(ctx, filepath.Join(t.TempDir(), "j.duckdb"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const n, sent = 200_000, 120_000
	for _, q := range []string{
		`INSERT INTO journal SELECT 'pb1-' || md5(i::VARCHAR), 'smartretry', 'refund', 'ABC', 'id' || i, 100 + i, 'USD', 'h',
		'pending', '', '', '', '', '', '', 0, 0, 'refunds.csv', '', i + 2, now(), now(), NULL,
		'POST', '/v1/x', '', 'ABC', 'TX', 'OR', '', '', '', NULL, '', '', NULL, NULL, false, 0, NULL, NULL, NULL FROM range(200000) t(i)`,
		// Rows sent so far: an intent and an outcome each, one in 97 declined.
		`INSERT INTO journal_events SELECT 2*i + s, 'pb1-' || md5(i::VARCHAR), if(s = 0, 'sending', if(i % 97 = 0, 'declined', 'final')),
		if(s = 0 OR i % 97 = 0, '', 'succeeded'), '', '', '', '', '', 0, 1, now(), now(), NULL, NULL, false, 0, NULL, NULL, NULL
		FROM range(120000) t(i), range(2) u(s)`,
		`CHECKPOINT`,
		`SET memory_limit = '40MB'`,
		`SET threads = 1`,
	} {
		if _, err := j.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	st := func(s ...paybatch.State) []paybatch.State { return s }
	for _, c := range []struct {
		name  string
		q     Query
		first int // source row of the first row of the page
		rows  int
	}{
		{"all", Query{SourceFile: "refunds.csv", Limit: 51}, 2, 51},
		{"declined deep", Query{SourceFile: "refunds.csv", Limit: 51, AfterRow: 100_000, States: st(paybatch.StateDeclined)}, 100_009, 51},
		{"pending", Query{SourceFile: "refunds.csv", Limit: 51, States: st(paybatch.StatePending)}, sent + 2, 51},
		{"final, bounded", Query{SourceFile: "refunds.csv", Limit: 51, AfterRow: 1000, ThroughRow: 1040, States: st(paybatch.StateFinal)}, 1001, 40},
	} {
		rows, err := j.Rows(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(rows) != c.rows || rows[0].Source.Row != c.first {
			t.Fatalf("%s: %d rows from row %d, want %d from %d", c.name, len(rows), rows[0].Source.Row, c.rows, c.first)
		}
		for _, r := range rows {
			if len(c.q.States) > 0 && r.State != c.q.States[0] {
				t.Fatalf("%s: row %d is %s", c.name, r.Source.Row, r.State)
			}
		}
	}
	counts, err := j.CountStates(ctx, Query{SourceFile: "refunds.csv"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[paybatch.State]int{}
	for _, c := range counts {
		got[c.State] += c.Rows
	}
	declined := (sent + 96) / 97
	if got[paybatch.StatePending] != n-sent || got[paybatch.StateDeclined] != declined || got[paybatch.StateFinal] != sent-declined {
		t.Fatalf("counts %v", got)
	}
}
