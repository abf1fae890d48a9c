package web

import "testing"

// The server works through the journal API both backends implement: the
// tests of uploading, validating and previewing, maker–checker, sending,
// resuming, outcomes, Direct Debit dates, reconciliation and downloads run
// on a DuckDB journal and on a PostgreSQL one (skipped without a test
// cluster, see pgtest).

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

func TestUploadValidationPage(t *testing.T) { onBothJournals(t, testUploadValidationPage) }

func TestMakerChecker(t *testing.T) { onBothJournals(t, testMakerChecker) }

func TestResumeStoppedBatch(t *testing.T) { onBothJournals(t, testResumeStoppedBatch) }

func TestDirectDebitDates(t *testing.T) { onBothJournals(t, testDirectDebitDates) }

func TestPreviewPagesWithoutDuplicates(t *testing.T) {
	onBothJournals(t, testPreviewPagesWithoutDuplicates)
}

func TestHeaderMappingUpload(t *testing.T) { onBothJournals(t, testHeaderMappingUpload) }
