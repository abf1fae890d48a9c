package postgres

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/paybatch/paybatch/pipeline/journal"
)

// What the web server reads of one batch, as the DuckDB journal answers it
// (journal.DuckDB's Snapshot): the server works the same on either backend.
// (IDsFromOtherFiles, which every journal answers, is in ids.go.)

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
