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
// The SQL calls it only where the cheap test of a 13-digit run (single
// spaces or hyphens allowed between digits, as MaskCardNumbers reads them)
// matches, so the usual text never crosses into Go:
//
//	CASE WHEN regexp_matches(s, '[0-9]([ -]?[0-9]){12}') THEN paybatch_mask(s) ELSE s END
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

// registerMask makes paybatch_mask available to every connection of db.
func registerMask(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := duckdb.RegisterScalarUDF(conn, "paybatch_mask", &maskFunc{}); err != nil {
		return fmt.Errorf("reconcile: register paybatch_mask: %w", err)
	}
	return nil
}
