package reconcile

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/paybatch/paybatch"
)

// maskFunc is the DuckDB scalar function paybatch_mask(VARCHAR) VARCHAR:
// paybatch.MaskCardNumbers, the one masking rule, called from SQL so that
// text leaving DuckDB (Parquet exports, report rows, the --db file) is
// masked by the same code as every other path out.
//
// The SQL calls it through the macro mask_cards(s) (sql/mask.sql), only
// where the cheap test of a 13-digit run, has_card(s), matches, so the
// usual text never crosses into Go.
type maskFunc struct{}

func (maskFunc) Config() duckdb.ScalarFuncConfig {
	varchar, _ := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	return duckdb.ScalarFuncConfig{InputTypeInfos: []duckdb.TypeInfo{varchar}, ResultTypeInfo: varchar}
}

func (maskFunc) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(values []driver.Value) (any, error) {
		s, ok := values[0].(string)
		if !ok {
			return nil, fmt.Errorf("paybatch_mask: want VARCHAR, got %T", values[0])
		}
		return paybatch.MaskCardNumbers(s), nil
	}}
}

// MaskSQL makes the masking of card numbers available to the SQL of
// conn's database: the function paybatch_mask (maskFunc) and the macros
// has_card and mask_cards (sql/mask.sql). Open calls it for a
// Reconciler's database; SQL of another (the journal export) masks its
// text by the same rule with it.
func MaskSQL(ctx context.Context, conn *sql.Conn) error {
	if err := duckdb.RegisterScalarUDF(conn, "paybatch_mask", &maskFunc{}); err != nil {
		return fmt.Errorf("reconcile: register paybatch_mask: %w", err)
	}
	if _, err := conn.ExecContext(ctx, query("mask")); err != nil {
		return fmt.Errorf("reconcile: sql/mask.sql: %w", err)
	}
	return nil
}

// registerMask calls MaskSQL for db: what it defines every connection of
// db sees.
func registerMask(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return MaskSQL(ctx, conn)
}

// scrubMasks masks card numbers (paybatch_mask) in every text column of
// every table of the database file: the ids lines are matched on
// (merchant_transaction_id) must be kept as written while the reconcile
// runs — two card numbers can mask alike — so they are masked only once it
// is done, as Close leaves the file. Every other text column is masked
// before it is stored (to_ledger.sql, to_provider.sql,
// journal_to_provider.sql); the scrub covers them too, and the stage tables
// of XLSX sheets and CSVs read in Go.
func scrubMasks(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT c.table_name, c.column_name
		FROM duckdb_columns() AS c
		JOIN duckdb_tables() AS t USING (database_oid, schema_oid, table_oid)
		WHERE c.database_name = current_database() AND c.data_type = 'VARCHAR' AND NOT t.temporary
		ORDER BY c.table_name, c.column_index`)
	if err != nil {
		return fmt.Errorf("reconcile: mask the database file: %w", err)
	}
	var cols [][2]string
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			rows.Close()
			return fmt.Errorf("reconcile: mask the database file: %w", err)
		}
		cols = append(cols, [2]string{t, c})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reconcile: mask the database file: %w", err)
	}
	for _, tc := range cols {
		t, c := quoteIdent(tc[0]), quoteIdent(tc[1])
		q := `UPDATE ` + t + ` SET ` + c + ` = paybatch_mask(` + c + `) WHERE has_card(` + c + `)` // sql/mask.sql
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reconcile: mask the database file: %s.%s: %w", tc[0], tc[1], err)
		}
	}
	if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("reconcile: mask the database file: %w", err)
	}
	return nil
}
