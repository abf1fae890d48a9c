package journal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Snapshot writes a new journal file at path holding the rows (with their
// latest states) and the rejects of the given source files, for a reader
// that must ATTACH a journal read-only while this process keeps holding
// this one (the web server reconciles one batch that way). The snapshot is
// made by this package's migrations, so it has the exported views. path
// must not exist.
func (j *DuckDB) Snapshot(ctx context.Context, path string, sourceFiles ...string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal snapshot %s: exists (or cannot be checked: %v)", path, err)
	}
	sj, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		return fmt.Errorf("journal snapshot: %w", err)
	}
	if err := sj.Close(); err != nil {
		return fmt.Errorf("journal snapshot: %w", err)
	}
	if len(sourceFiles) == 0 {
		return nil
	}
	if err := j.materialise(); err != nil {
		return fmt.Errorf("journal snapshot: %w", err)
	}
	conn, err := j.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("journal snapshot: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH '`+strings.ReplaceAll(path, "'", "''")+`' AS journal_snapshot`); err != nil {
		return fmt.Errorf("journal snapshot: %w", err)
	}
	in := "(" + placeholders(len(sourceFiles)) + ")"
	args := make([]any, len(sourceFiles))
	for i, f := range sourceFiles {
		args[i] = f
	}
	for _, q := range []string{
		`INSERT INTO journal_snapshot.journal (` + journalColumns + `) SELECT ` + journalColumns +
			` FROM (` + latestRowsSQL() + `) WHERE source_file IN ` + in + ` ORDER BY source_file, source_sheet, source_row, key`,
		`INSERT INTO journal_snapshot.rejects SELECT source_file, source_sheet, source_row, column_name, value, reason,
			merchant_transaction_id FROM rejects WHERE source_file IN ` + in,
	} {
		if _, err = conn.ExecContext(ctx, q, args...); err != nil {
			break
		}
	}
	if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DETACH journal_snapshot`); err == nil {
		err = derr
	}
	if err != nil {
		return fmt.Errorf("journal snapshot %s: %w", path, err)
	}
	return nil
}
