package postgres

import (
	"context"
	"database/sql"
)

// CopyTableThreads is CopyTable on threads DuckDB threads (0: as the
// database is set), for the benchmark's side-by-side.
func (j *Journal) CopyTableThreads(ctx context.Context, conn *sql.Conn, catalog, table, view string, cols []Column, threads int) (int64, error) {
	return j.copyTable(ctx, conn, catalog, table, view, cols, threads)
}
