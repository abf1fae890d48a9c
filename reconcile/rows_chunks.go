package reconcile

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unsafe"

	bindings "github.com/duckdb/duckdb-go-bindings"
	"github.com/duckdb/duckdb-go/v2"
	"github.com/duckdb/duckdb-go/v2/mapping"
)

// The pages of Rows read through DuckDB's C API (duckdb-go-bindings,
// which the driver is built on): a streaming result of
// sql/rows_fields.sql, fetched a chunk (2,048 rows) at a time, each
// column's values read in place from the chunk's vectors. The driver's
// rows instead materialise the whole result first, then box every value of
// every row into an interface (an allocation for each number, date and
// string, and a copy of each string); rows_page.sql's packed text only
// halved that (#19, BENCHMARKS.md "Full report", session 11).
//
// The driver has no exported way to its C connection: chunkConn reads the
// field of *duckdb.Conn that holds it, checked by name and type, and Rows
// falls back to the driver's rows when that is not there (another driver
// version). TestRowsReadChunks fails then, so an upgrade cannot lose the
// fast road silently.

// chunkConn is the C connection under the driver's connection dc; false
// when dc is not a *duckdb.Conn holding one where duckdb-go 2.10505 does
// (its unexported field conn, a mapping.Connection).
func chunkConn(dc any) (mapping.Connection, bool) {
	c, ok := dc.(*duckdb.Conn)
	if !ok || c == nil {
		return mapping.Connection{}, false
	}
	f := reflect.ValueOf(c).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[mapping.Connection]() {
		return mapping.Connection{}, false
	}
	conn := *(*mapping.Connection)(unsafe.Pointer(f.UnsafeAddr()))
	return conn, conn.Ptr != nil
}

// fieldTypes are sql/rows_fields.sql's column types: rowid, category,
// merchant_transaction_id, ledger_amount_minor, ledger_currency,
// ledger_status, provider_amount_minor, provider_currency,
// provider_status, provider_id, reason, source_file, source_sheet,
// source_row, requested_date, provider_date, src_load.
func fieldTypes() [17]mapping.Type {
	return [17]mapping.Type{
		mapping.TypeBigInt, mapping.TypeVarchar, mapping.TypeVarchar,
		mapping.TypeBigInt, mapping.TypeVarchar, mapping.TypeVarchar,
		mapping.TypeBigInt, mapping.TypeVarchar, mapping.TypeVarchar, mapping.TypeVarchar, mapping.TypeVarchar,
		mapping.TypeVarchar, mapping.TypeVarchar,
		mapping.TypeInteger, mapping.TypeDate, mapping.TypeDate, mapping.TypeBigInt,
	}
}

// fieldText are the columns of rows_fields.sql in rowParts.text's order.
func fieldText() [10]int { return [10]int{1, 2, 4, 5, 7, 8, 9, 10, 11, 12} }

// chunkPage reads page first to last of q (sql/rows_fields.sql) on C
// connection conn and hands each row to each until it returns false. The
// text fields of a chunk's rows are cut out of one copy of the chunk's
// text (a string per chunk, not per value).
func chunkPage(ctx context.Context, conn mapping.Connection, q string, first, last int64, each func(int64, *rowParts, bool) (bool, error)) error {
	var stmt mapping.PreparedStatement
	if mapping.Prepare(conn, q, &stmt) == mapping.StateError {
		err := errors.New(mapping.PrepareError(stmt))
		mapping.DestroyPrepare(&stmt)
		return err
	}
	defer mapping.DestroyPrepare(&stmt)
	for _, p := range []struct {
		name string
		v    int64
	}{{"first", first}, {"last", last}} {
		var i mapping.IdxT
		if mapping.BindParameterIndex(stmt, &i, p.name) == mapping.StateError || mapping.BindInt64(stmt, i, p.v) == mapping.StateError {
			return fmt.Errorf("binding $%s: %s", p.name, mapping.PrepareError(stmt))
		}
	}
	// ctx interrupts the query (as the driver does); the goroutine has
	// ended before the connection is handed back
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			mapping.Interrupt(conn)
		case <-stop:
		}
	}()
	defer func() { close(stop); <-stopped }()
	var pending mapping.PendingResult
	if bindings.PendingPreparedStreaming(stmt, &pending) == mapping.StateError {
		err := errors.New(mapping.PendingError(pending))
		mapping.DestroyPending(&pending)
		return err
	}
	defer mapping.DestroyPending(&pending)
	var res mapping.Result
	if mapping.ExecutePending(pending, &res) == mapping.StateError {
		err := errors.New(mapping.ResultError(&res))
		mapping.DestroyResult(&res)
		return errors.Join(ctx.Err(), err)
	}
	defer mapping.DestroyResult(&res)
	types := fieldTypes()
	if n := mapping.ColumnCount(&res); n != mapping.IdxT(len(types)) {
		return fmt.Errorf("%d columns, want %d", n, len(types))
	}
	for i, t := range types {
		if got := mapping.ColumnType(&res, mapping.IdxT(i)); got != t {
			return fmt.Errorf("column %s is of type %d, want %d", mapping.ColumnName(&res, mapping.IdxT(i)), got, t)
		}
	}
	var cols [17]chunkCol
	var p rowParts
	for {
		ch := mapping.FetchChunk(res)
		if ch.Ptr == nil {
			break
		}
		more, err := chunkRows(ch, &cols, &p, each)
		mapping.DestroyDataChunk(&ch)
		if !more || err != nil {
			return err
		}
	}
	if msg := mapping.ResultError(&res); msg != "" {
		return errors.Join(ctx.Err(), errors.New(msg))
	}
	return ctx.Err()
}

// chunkCol is a column of a chunk in place: its values and validity mask
// (nil: every value valid). duckdb_fetch_chunk hands flat vectors
// (QueryResult::Fetch flattens each chunk), so value i is at place i.
type chunkCol struct {
	data, mask unsafe.Pointer
}

func (c *chunkCol) valid(i int) bool {
	if c.mask == nil {
		return true
	}
	return *(*uint64)(unsafe.Add(c.mask, i/64*8))&(1<<(i%64)) != 0
}

func (c *chunkCol) int64(i int) int64 { return *(*int64)(unsafe.Add(c.data, i*8)) }
func (c *chunkCol) int32(i int) int32 { return *(*int32)(unsafe.Add(c.data, i*4)) }

// strLen is the length of value i of a VARCHAR column (see str).
func (c *chunkCol) strLen(i int) int { return int(*(*uint32)(unsafe.Add(c.data, i*16))) }

// str is value i of a VARCHAR column, in DuckDB's memory (not a copy):
// duckdb_string_t is a uint32 length, then the bytes inline up to 12 of
// them, else a 4-byte prefix and a pointer (the driver reads it so too).
func (c *chunkCol) str(i int) string {
	t := unsafe.Add(c.data, i*16)
	n := *(*uint32)(t)
	if n == 0 {
		return ""
	}
	if n <= 12 {
		return unsafe.String((*byte)(unsafe.Add(t, 4)), int(n))
	}
	return unsafe.String(*(**byte)(unsafe.Add(t, 8)), int(n))
}

// chunkRows hands each row of chunk ch to each; false when each stopped.
func chunkRows(ch mapping.DataChunk, cols *[17]chunkCol, p *rowParts, each func(int64, *rowParts, bool) (bool, error)) (bool, error) {
	n := int(mapping.DataChunkGetSize(ch))
	if n == 0 {
		return true, nil
	}
	if c := mapping.DataChunkGetColumnCount(ch); c != mapping.IdxT(len(cols)) {
		return false, fmt.Errorf("a chunk of %d columns, want %d", c, len(cols))
	}
	for i := range cols {
		v := mapping.DataChunkGetVector(ch, mapping.IdxT(i))
		cols[i] = chunkCol{data: mapping.VectorGetData(v), mask: mapping.VectorGetValidity(v)}
	}
	// the chunk's text, copied once: column after column, each starting
	// at start[k]
	text := fieldText()
	size := 0
	for _, c := range text {
		for i := range n {
			if cols[c].valid(i) {
				size += cols[c].strLen(i)
			}
		}
	}
	buf := make([]byte, 0, size)
	var start [10]int
	for k, c := range text {
		start[k] = len(buf)
		for i := range n {
			if cols[c].valid(i) {
				buf = append(buf, cols[c].str(i)...)
			}
		}
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	for i := range n {
		if !cols[0].valid(i) {
			return false, fmt.Errorf("row %d of a chunk: NULL rowid", i)
		}
		*p = rowParts{}
		for k, c := range text {
			if !cols[c].valid(i) {
				continue
			}
			l := cols[c].strLen(i)
			p.text[k] = all[start[k] : start[k]+l]
			start[k] += l
		}
		if !cols[7].valid(i) {
			p.nulls |= nullProviderCurrency
		}
		if !cols[11].valid(i) {
			p.nulls |= nullSourceFile
		}
		if !cols[12].valid(i) {
			p.nulls |= nullSourceSheet
		}
		if cols[3].valid(i) {
			p.ledgerMinor, p.has = cols[3].int64(i), p.has|hasLedgerMinor
		}
		if cols[6].valid(i) {
			p.providerMinor, p.has = cols[6].int64(i), p.has|hasProviderMinor
		}
		if cols[13].valid(i) {
			p.sourceRow, p.has = int64(cols[13].int32(i)), p.has|hasSourceRow
		}
		if cols[16].valid(i) {
			p.load, p.has = cols[16].int64(i), p.has|hasLoad
		}
		if cols[14].valid(i) {
			p.requested = dayOf(cols[14].int32(i))
		}
		if cols[15].valid(i) {
			p.provided = dayOf(cols[15].int32(i))
		}
		if more, err := each(cols[0].int64(i), p, true); !more || err != nil {
			return false, err
		}
	}
	return true, nil
}

// dayOf is a DATE (days since 1970-01-01) as the driver gives it: midnight
// UTC of the day.
func dayOf(d int32) time.Time {
	return time.Unix(int64(d)*86400, 0).UTC()
}
