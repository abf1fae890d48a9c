package web

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/paybatch/paybatch/pipeline/journal/postgres"
)

// OpenPostgresStore is the Store in a PostgreSQL journal: the same tables
// (the journal's migration 0005_web.sql in PostgreSQL's dialect) and the
// same SQL as on DuckDB, through database/sql on the journal's pool, with
// the placeholders rewritten to PostgreSQL's ($1, $2, …). Each change of a
// batch is one transaction; PostgreSQL's row locks give two requests racing
// for the same batch one winner, as DuckDB's conflicts do.
func OpenPostgresStore(ctx context.Context, j *postgres.Journal) (*DuckStore, error) {
	db := sql.OpenDB(pgConnector{stdlib.GetPoolConnector(j.Pool())})
	// No idle connections on this side: each goes back to the journal's
	// pool after use, so closing the journal never waits for the store.
	db.SetMaxIdleConns(0)
	var ok bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('web_batches') IS NOT NULL`).Scan(&ok); err != nil || !ok {
		db.Close()
		return nil, fmt.Errorf("web store: journal %s has no web tables (migration 0005_web): %v", j.Name(), err)
	}
	return &DuckStore{db: db}, nil
}

// rebind rewrites q's ? placeholders (outside quoted text) as $1, $2, ….
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n, quote := 0, byte(0)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pgConnector hands out pgx's database/sql connections with every query
// rebound.
type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, errors.New("web store: not a pgx connection")
	}
	return pgConn{pc}, nil
}

// pgConn is a pgx connection whose queries are rebound; everything else
// (transactions, type conversions, session reset) is pgx's.
type pgConn struct{ *stdlib.Conn }

func (c pgConn) Prepare(q string) (driver.Stmt, error) { return c.Conn.Prepare(rebind(q)) }

func (c pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(q))
}

func (c pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(q), args)
}

func (c pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(q), args)
}
