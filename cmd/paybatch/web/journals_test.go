package web

import "testing"

// The server works through the journal API both backends implement: the
// tests of sending, outcomes, reconciliation and downloads, and of
// maker–checker's one submission, run on a DuckDB journal and on a
// PostgreSQL one (skipped without a test cluster, see pgtest).

// onBothJournals runs test with a harness on each journal backend.
func onBothJournals(t *testing.T, test func(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness)) {
	for _, backend := range []string{"duckdb", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			test(t, func(tb testing.TB, tweak ...func(*Config)) *harness { return newHarnessOn(tb, backend, tweak...) })
		})
	}
}

func TestSendProgressOutcomesReport(t *testing.T) {
	onBothJournals(t, testSendProgressOutcomesReport)
}

func TestReconcileDownloadsEmail(t *testing.T) { onBothJournals(t, testReconcileDownloadsEmail) }

func TestConcurrentApprovalsOneSubmission(t *testing.T) {
	onBothJournals(t, testConcurrentApprovalsOneSubmission)
}
