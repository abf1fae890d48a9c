package pipeline_test

import (
	"context"
	"testing"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// The crash rounds on a PostgreSQL journal: a fresh database per round,
// the same faults, kills and checks as on DuckDB.
func TestCrashResumePostgres(t *testing.T) {
	pgtest.ClusterURL(t)
	crashResume(t, func(t *testing.T) string { return pgtest.URL(t) })
}

// openAt opens the journal at loc: a postgres:// URL or a DuckDB file.
func openAt(ctx context.Context, loc string) (journal.Journal, error) {
	if postgres.IsURL(loc) {
		return postgres.Open(ctx, loc, postgres.Options{})
	}
	return journal.OpenDuckDB(ctx, loc, journal.Options{})
}

func openTest(tb testing.TB, loc string) journal.Journal {
	tb.Helper()
	j, err := openAt(context.Background(), loc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	return j
}
