package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// An invalidated database. A DuckDB database that meets an internal error
// (a DuckDB bug: session 10's CI met one in a window function, see
// duckdb_ids.go) or a fatal one is invalidated: every later statement on
// it, on any connection — reads, the writer's commits, folds — fails with
// "FATAL Error: Failed: database has been invalidated because of a previous
// fatal error. The database must be restarted prior to being used again."
// until the file is opened again. Nothing committed is lost: opening the
// file again (Close, OpenDuckDB; or reopen) gives every committed row and
// state change back, and a Save refused meanwhile was not written (its
// request never left). Measured on DuckDB 1.5.5 (TestInvalidatedJournal):
// reopening takes ≈ 20 ms.
//
// The journal does not reopen itself: a process that holds it for long
// (paybatch serve) keeps what it knows of the journal's rows beside it —
// the batches being sent, resumed only when it starts — so it asks
// Invalidated and restarts as a whole; a command ends with the error and the
// next one opens the file afresh.

// IsInvalidated reports whether err is DuckDB's refusal to work on a
// database it has invalidated: a FATAL error, or an Appender's (the
// driver passes those on as text).
func IsInvalidated(err error) bool {
	var de *duckdb.Error
	if errors.As(err, &de) && de.Type == duckdb.ErrorTypeFatal {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "database has been invalidated")
}

// Invalidated asks the journal's database a trivial question and returns
// DuckDB's answer when DuckDB has invalidated it (IsInvalidated holds for
// it), nil otherwise — whatever else failed (a context ended, a reopen that
// could not open the file) is not an invalidated database.
func (j *DuckDB) Invalidated(ctx context.Context) error {
	var one int
	if err := j.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); IsInvalidated(err) {
		return fmt.Errorf("journal %s: DuckDB has invalidated the database after an internal error; nothing committed is lost, and the journal is whole when the file is opened again: %w", j.path, err)
	}
	return nil
}
