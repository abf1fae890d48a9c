package journal

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"

	"github.com/duckdb/duckdb-go/v2"
)

// WriteSnapshot writes a new DuckDB journal file at path holding rows as
// they are (their latest states) and rejects: what (*DuckDB).Snapshot
// writes, for a journal of another backend (postgres.Journal.Snapshot),
// so that a reader that attaches a DuckDB journal read-only — the web
// server reconciling one batch — reads either backend the same way. The
// rows go in through the Appender a page at a time. path must not exist.
func WriteSnapshot(ctx context.Context, path string, rows iter.Seq2[[]*Row, error], rejects []Reject) (err error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal snapshot %s: exists (or cannot be checked: %v)", path, err)
	}
	sj, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		return fmt.Errorf("journal snapshot: %w", err)
	}
	defer func() {
		if cerr := sj.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("journal snapshot %s: %w", path, cerr)
		}
	}()
	conn, err := sj.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("journal snapshot %s: %w", path, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) (err error) {
		app, err := duckdb.NewAppender(dc.(driver.Conn), "", "", "journal")
		if err != nil {
			return err
		}
		defer func() {
			if cerr := app.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		for page, err := range rows {
			if err != nil {
				return err
			}
			for _, r := range page {
				if err := app.AppendRow(journalArgs(r)...); err != nil {
					return fmt.Errorf("row %s: %w", r.Key, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal snapshot %s: %w", path, err)
	}
	if len(rejects) > 0 {
		if err := sj.RecordRejects(ctx, rejects); err != nil {
			return fmt.Errorf("journal snapshot %s: %w", path, err)
		}
	}
	return nil
}
