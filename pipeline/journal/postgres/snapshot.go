package postgres

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/paybatch/paybatch/pipeline/journal"
)

// What the web server reads of one batch, as the DuckDB journal answers it
// (journal.DuckDB's IDsFromOtherFiles and Snapshot): the server works the
// same on either backend.

// IDsFromOtherFiles returns, in journal order, up to limit of the ids among
// ids that the journal holds from a source file other than file, and how
// many there are — rows already journaled (whatever their state) that a
// new batch would repeat. The ids travel as one array parameter.
func (j *Journal) IDsFromOtherFiles(ctx context.Context, file string, ids []string, limit int) ([]string, int, error) {
	if len(ids) == 0 {
		return nil, 0, nil
	}
	rows, err := j.pool.Query(ctx, `SELECT merchant_transaction_id FROM journal
		WHERE source_file <> $1 AND merchant_transaction_id = ANY($2)
		ORDER BY source_file, source_row`, file, ids)
	if err != nil {
		return nil, 0, j.wrap("ids", err)
	}
	defer rows.Close()
	var out []string
	n := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, 0, j.wrap("ids", err)
		}
		if n++; len(out) < limit {
			out = append(out, id)
		}
	}
	return out, n, j.wrap("ids", rows.Err())
}

// Snapshot writes a new DuckDB journal file at path holding the rows (with
// their latest states) and the rejects of the given source files — what
// journal.DuckDB.Snapshot writes (see journal.WriteSnapshot) — for a
// reader that attaches a DuckDB journal read-only (the web server
// reconciles one batch that way). Each file's rows are read a page at a
// time, in source order. path must not exist.
func (j *Journal) Snapshot(ctx context.Context, path string, sourceFiles ...string) error {
	files := slices.Clone(sourceFiles)
	slices.Sort(files)
	files = slices.Compact(files)
	var rejects []journal.Reject
	if len(files) > 0 {
		all, err := j.Rejects(ctx)
		if err != nil {
			return err
		}
		for _, r := range all {
			if slices.Contains(files, r.Source.File) {
				rejects = append(rejects, r)
			}
		}
	}
	return journal.WriteSnapshot(ctx, path, j.filePages(ctx, files), rejects)
}

// filePages yields the rows of files, a file at a time, each a page of
// rows at a time in source order (keyset paging on the source row, which
// walks one sheet: a file whose rows span sheets is refused rather than
// copied in part).
func (j *Journal) filePages(ctx context.Context, files []string) iter.Seq2[[]*journal.Row, error] {
	return func(yield func([]*journal.Row, error) bool) {
		for _, f := range files {
			want, err := j.CountRows(ctx, journal.Query{SourceFile: f})
			if err != nil {
				yield(nil, err)
				return
			}
			after, got := 0, 0
			for {
				page, err := j.Rows(ctx, journal.Query{SourceFile: f, AfterRow: after, Limit: j.pageRows})
				if err != nil {
					yield(nil, err)
					return
				}
				if len(page) == 0 {
					break
				}
				if got += len(page); !yield(page, nil) {
					return
				}
				after = page[len(page)-1].Source.Row
			}
			if got != want {
				yield(nil, fmt.Errorf("journal %s: snapshot of %s: %d of its %d rows read in source-row order (its rows span sheets)", j.name, f, got, want))
				return
			}
		}
	}
}
