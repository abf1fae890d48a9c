package reconcile

import (
	"context"
	"strings"
	"testing"
)

// TestStatusLookupUnique: status_lookup (sql/vocab.sql) holds every word of
// status_vocab as written lower, UPPER and Title case, and no spelling twice
// on a side — packed_<n> and lines_<n> join each line to it, so a spelling
// held twice would join a line twice. vocab.sql builds it without a
// DISTINCT: a word's spellings are distinct by list_distinct, and this test
// holds the words of a side distinct in any case.
func TestStatusLookupUnique(t *testing.T) {
	r := MustOpen(t, "")
	ctx := context.Background()
	var rows, distinct int
	if err := r.db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT (side, raw)) FROM status_lookup`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != distinct {
		t.Errorf("status_lookup: %d rows, %d distinct (side, raw)", rows, distinct)
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	spellings, err := queryStrings(ctx, conn, `SELECT side || ':' || raw || ':' || word FROM status_lookup`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range spellings {
		got[s] = true
	}
	words, err := queryStrings(ctx, conn, `SELECT side || ':' || word FROM status_vocab`)
	if err != nil {
		t.Fatal(err)
	}
	if len(words) == 0 {
		t.Fatal("status_vocab is empty")
	}
	for _, sw := range words {
		side, w, _ := strings.Cut(sw, ":")
		for _, raw := range []string{w, strings.ToUpper(w), strings.ToUpper(w[:1]) + w[1:]} {
			if !got[side+":"+raw+":"+w] {
				t.Errorf("status_lookup lacks %s %q for %q", side, raw, w)
			}
		}
	}
}
