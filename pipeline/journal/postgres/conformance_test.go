package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/journaltest"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
	"github.com/paybatch/paybatch/pipeline/journal/postgres/pgtest"
)

// The journal's conformance suite, on PostgreSQL: each name is a database
// of its own, the same name reopening the same database.
func TestPostgresConformance(t *testing.T) {
	pgtest.ClusterURL(t)
	var mu sync.Mutex
	dbs := map[string]string{}
	journaltest.Run(t, func(tb testing.TB, name string) journal.Journal {
		mu.Lock()
		url, ok := dbs[name]
		if !ok {
			url = pgtest.URL(t)
			dbs[name] = url
		}
		mu.Unlock()
		j, err := postgres.Open(context.Background(), url, postgres.Options{PageRows: 7})
		if err != nil {
			tb.Fatal(err)
		}
		return j
	})
}
