package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/paybatch/paybatch/readers"
)

// createStage creates the text table a file read in Go is appended to:
// one VARCHAR column per role and the row number the user sees.
func createStage(ctx context.Context, conn *sql.Conn, table string) error {
	cols := make([]string, len(stageRoles))
	for i, role := range stageRoles {
		cols[i] = role + " VARCHAR"
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE OR REPLACE TABLE %s (%s, src_row INTEGER)`, table, strings.Join(cols, ", "))); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return nil
}

// stageCSV reads a CSV in Go, through readers, into stage_<n>, and makes
// src_<n> a view over it: a CSV DuckDB's reader refused, or one it cannot
// take as it is (UTF-16, CR-only line endings, a "sep=" line, blank lines
// before the header). readers reads it with the rules every input of
// paybatch is read by: a record with more or fewer fields than the header,
// a quote never closed or a quote inside an unquoted value is refused,
// naming the line and the fix. Memory stays bounded (one record at a time).
// Row numbers are the record's first line in the file.
func stageCSV(ctx context.Context, conn *sql.Conn, s *source) error {
	if err := stageTable(ctx, conn, s, readers.TableOptions{}, nil); err != nil {
		return err
	}
	s.staged, s.copied = true, false
	return nil
}
