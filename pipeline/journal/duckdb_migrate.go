package journal

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
)

//go:embed migrations/duckdb/*.sql
var duckdbMigrations embed.FS

// Migration is one numbered schema change of a backend.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists a backend's migrations (the files of dir in fsys) in
// order; file names are NNNN_name.sql, numbered from 1 without gaps. Every
// backend numbers the same changes alike.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range ents {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: rest, SQL: string(b)})
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Version < out[k].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: want version %d (numbered from 1 without gaps)", m.Version, m.Name, i+1)
		}
	}
	return out, nil
}

// NewerSchema is the error for a journal whose schema version (found) is
// newer than the migrations this binary knows (nil when it is not).
func NewerSchema(name string, found, known int) error {
	if found <= known {
		return nil
	}
	return fmt.Errorf("journal %s has schema version %d, this paybatch knows %d: %w (use a newer paybatch)",
		name, found, known, ErrNewerSchema)
}

// SchemaVersion is the schema version this binary writes (DuckDB backend).
func SchemaVersion() int {
	ms, err := Migrations(duckdbMigrations, "migrations/duckdb")
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the journal's schema to the latest version, one migration
// per transaction, and returns the version it found. It is not cancelled
// with ctx: a migration is short, and an interrupt (Ctrl-C) lands after it.
func migrate(ctx context.Context, db *sql.DB, name string) (int, error) {
	ctx = context.WithoutCancel(ctx)
	ms, err := Migrations(duckdbMigrations, "migrations/duckdb")
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)`); err != nil {
		return 0, fmt.Errorf("journal %s: schema version: %w", name, err)
	}
	var found, unstamped int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0), count(*) FILTER (WHERE applied_at = `+unstampedAt+`)
		FROM schema_version`).Scan(&found, &unstamped); err != nil {
		return 0, fmt.Errorf("journal %s: schema version: %w", name, err)
	}
	if err := NewerSchema(name, found, len(ms)); err != nil {
		return found, err
	}
	if unstamped > 0 {
		// A journal made from the empty one (createDuckDB): its
		// migrations are applied as of now.
		if _, err := db.ExecContext(ctx, `UPDATE schema_version SET applied_at = ? WHERE applied_at = `+unstampedAt,
			time.Now().UTC()); err != nil {
			return found, fmt.Errorf("journal %s: schema version: %w", name, err)
		}
	}
	if found == 0 {
		// A new journal (or one from before versioning) gets every
		// migration in one transaction: all or nothing, one commit.
		if err := apply(ctx, db, ms...); err != nil {
			return found, fmt.Errorf("journal %s: migrations: %w", name, err)
		}
		return found, nil
	}
	for _, m := range ms[found:] {
		if err := apply(ctx, db, m); err != nil {
			return found, fmt.Errorf("journal %s: migration %04d_%s: %w", name, m.Version, m.Name, err)
		}
	}
	return found, nil
}

// apply runs migrations in one transaction, recording each.
func apply(ctx context.Context, db *sql.DB, ms ...Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, m := range ms {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("%04d_%s: %w", m.Version, m.Name, err)
		}
		if step := goStep(m.Version); step != nil {
			if err := step(ctx, tx); err != nil {
				return fmt.Errorf("%04d_%s: %w", m.Version, m.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version VALUES (?, ?, ?)`, m.Version, m.Name, time.Now().UTC()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// goStep is the part of a migration that SQL cannot do, run in the same
// transaction after the migration's SQL.
func goStep(version int) func(context.Context, *sql.Tx) error {
	switch version {
	case 4:
		return maskRejects
	}
	return nil
}

// maskRejects masks card numbers in rejects recorded before RecordRejects
// masked them.
func maskRejects(ctx context.Context, tx *sql.Tx) error {
	rs, err := tx.QueryContext(ctx, `SELECT DISTINCT coalesce(value, ''), coalesce(reason, '') FROM rejects`)
	if err != nil {
		return err
	}
	type pair struct{ value, reason string }
	var fix []pair
	for rs.Next() {
		var p pair
		if err := rs.Scan(&p.value, &p.reason); err != nil {
			rs.Close()
			return err
		}
		if paybatch.MaskCardNumbers(p.value) != p.value || paybatch.MaskCardNumbers(p.reason) != p.reason {
			fix = append(fix, p)
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	for _, p := range fix {
		if _, err := tx.ExecContext(ctx, `UPDATE rejects SET value = ?, reason = ?
			WHERE coalesce(value, '') = ? AND coalesce(reason, '') = ?`,
			paybatch.MaskCardNumbers(p.value), paybatch.MaskCardNumbers(p.reason), p.value, p.reason); err != nil {
			return err
		}
	}
	return nil
}

// Upgrade migrates the journal at path when its schema is older than this
// binary's, and leaves it untouched (not even opened for writing) when it
// is current. Readers that ATTACH the file read-only (reconcile) call it
// first. A damaged file is reported as ErrDamaged. A checkpoint cut short
// (its protected copy still beside the file), or a paced run's change log
// a kill left (duckdb_changelog.go), is dealt with first, under the lock,
// by opening the journal (ErrLocked while another process holds it).
func Upgrade(ctx context.Context, path string) error {
	if pendingRepair(path) {
		j, err := OpenDuckDB(ctx, path, Options{})
		if err != nil {
			return err
		}
		return j.Close()
	}
	v, err := readVersion(ctx, path)
	if err != nil {
		return err
	}
	if v >= SchemaVersion() {
		return nil
	}
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		return err
	}
	return j.Close()
}

// readVersion reads the schema version of the journal at path, read-only
// (0 for a journal from before versioning), under the journal's lock
// shared (readLock): ErrLocked while a process holds the journal.
func readVersion(ctx context.Context, path string) (int, error) {
	if err := checkHeader(path); err != nil {
		return 0, err
	}
	release, err := readLock(path)
	if err != nil {
		return 0, err
	}
	defer release()
	db, err := sql.Open("duckdb", dsn(path)+"&access_mode=read_only")
	if err != nil {
		return 0, damaged(path, err)
	}
	defer db.Close()
	var has int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE table_name = 'schema_version' AND schema_name = 'main'`).Scan(&has); err != nil {
		return 0, damaged(path, err)
	}
	if has == 0 {
		return 0, nil
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, damaged(path, err)
	}
	return v, nil
}

// pendingRepair says whether the journal at path has something beside it
// that only opening it deals with: a checkpoint's protected copy, or a
// change log.
func pendingRepair(path string) bool {
	for _, p := range []string{checkpointCopy(path), changeLogPath(path)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
