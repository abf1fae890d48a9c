package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paybatch/paybatch/pipeline/journal"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations lists the PostgreSQL migrations in order (the DuckDB
// journal's numbers).
func migrations() ([]journal.Migration, error) {
	return journal.Migrations(migrationFiles, "migrations")
}

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrateLock is the advisory lock key under which migrations run, so that
// processes opening a new journal at once apply each migration once.
const migrateLock = 0x70617962 // "payb"

// Migrate brings the schema to this binary's version and returns the
// version it found. All pending migrations and their schema_version rows
// are applied in one transaction (PostgreSQL's DDL is transactional).
func Migrate(ctx context.Context, pool *pgxpool.Pool, name string) (int, error) {
	ms, err := migrations()
	if err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("journal %s: %w", name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return 0, fmt.Errorf("journal %s: migrate: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("journal %s: schema version: %w", name, err)
	}
	var found int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&found); err != nil {
		return 0, fmt.Errorf("journal %s: schema version: %w", name, err)
	}
	if err := journal.NewerSchema(name, found, len(ms)); err != nil {
		return found, err
	}
	if found == len(ms) {
		return found, nil
	}
	for _, m := range ms[found:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return found, fmt.Errorf("journal %s: migration %04d_%s: %w", name, m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return found, fmt.Errorf("journal %s: migration %04d_%s: %w", name, m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return found, fmt.Errorf("journal %s: migrate: %w", name, err)
	}
	return found, nil
}

// Version is the journal's schema version.
func (j *Journal) Version(ctx context.Context) (int, error) {
	var v int
	err := j.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v)
	return v, j.wrap("schema version", err)
}
