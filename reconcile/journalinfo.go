package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/paybatch/paybatch"
)

// JournalFacts is what a journal says about the run(s) it holds, for the
// report's Summary: the batch files it recorded and the providers and kinds
// of its rows.
type JournalFacts struct {
	Inputs    []paybatch.InputFile // batch files recorded as processed, first first
	Providers []paybatch.Provider  // of its rows, sorted
	Kinds     []paybatch.Kind      // of its rows, sorted
}

// ReadJournalFacts reads the journal at path (read-only, like LoadJournal)
// for its recorded inputs and the providers and kinds of its rows. A
// journal without an inputs table gives no inputs.
func (r *Reconciler) ReadJournalFacts(ctx context.Context, path string) (JournalFacts, error) {
	var f JournalFacts
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return f, fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH `+quoteLiteral(path)+` AS journal_facts (READ_ONLY)`); err != nil {
		return f, fmt.Errorf("%w: journal %s: %v", paybatch.ErrUnusableFile, path, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH journal_facts`)
	tables, err := queryStrings(ctx, conn,
		`SELECT table_name FROM information_schema.tables WHERE table_catalog = 'journal_facts' AND table_schema = 'main'`)
	if err != nil {
		return f, fmt.Errorf("reconcile: journal %s: %w", path, err)
	}
	has := map[string]bool{}
	for _, t := range tables {
		has[t] = true
	}
	if has["journal_export"] { // the journal's exported view (pipeline/journal)
		rows, err := conn.QueryContext(ctx, `SELECT DISTINCT provider, kind FROM journal_facts.journal_export ORDER BY ALL`)
		if err != nil {
			return f, fmt.Errorf("reconcile: journal %s: %w", path, err)
		}
		seenP, seenK := map[string]bool{}, map[string]bool{}
		for rows.Next() {
			var p, k string
			if err := rows.Scan(&p, &k); err != nil {
				rows.Close()
				return f, fmt.Errorf("reconcile: journal %s: %w", path, err)
			}
			if p = strings.TrimSpace(p); p != "" && !seenP[p] {
				seenP[p] = true
				f.Providers = append(f.Providers, paybatch.Provider(p))
			}
			if k = strings.TrimSpace(k); k != "" && !seenK[k] {
				seenK[k] = true
				f.Kinds = append(f.Kinds, paybatch.Kind(k))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return f, fmt.Errorf("reconcile: journal %s: %w", path, err)
		}
	}
	if has["inputs"] {
		// one line per file content, in the order they were processed
		rows, err := conn.QueryContext(ctx, `SELECT path, sha256, max(rows)
			FROM journal_facts.inputs GROUP BY path, sha256 ORDER BY min(processed_at), path`)
		if err != nil {
			return f, fmt.Errorf("reconcile: journal %s inputs: %w", path, err)
		}
		defer rows.Close()
		for rows.Next() {
			var in paybatch.InputFile
			var p, sha *string
			var n *int64
			if err := rows.Scan(&p, &sha, &n); err != nil {
				return f, fmt.Errorf("reconcile: journal %s inputs: %w", path, err)
			}
			if p != nil {
				in.Path = *p
			}
			if sha != nil {
				in.SHA256 = *sha
			}
			if n != nil {
				in.Rows = int(*n)
			}
			f.Inputs = append(f.Inputs, in)
		}
		if err := rows.Err(); err != nil {
			return f, fmt.Errorf("reconcile: journal %s inputs: %w", path, err)
		}
	}
	return f, nil
}

// Lines returns how many lines Run read on each side: ledger lines, and
// provider lines (results lines, or journal rows and reader rejects). Blank
// lines are not counted. Zero before Run.
func (r *Reconciler) Lines() (ledger, provider int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ledgerLines, r.providerLines
}
