package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/paybatch/paybatch/readers"
)

// TestPaddedID holds padded_id (sql/schema.sql) to readers.TrimID, the one
// rule for ids: true exactly when TrimID would change the id. Every
// character of unicode.White_Space alone, at either end, inside, doubled;
// the ASCII controls and the characters near the spaces that are not
// spaces (zero-width space, BOM, U+180E, NEL's neighbours); other
// characters beyond ASCII at either end. Both where Run uses it (a CASE
// condition, whose ORs and ANDs DuckDB cuts short) and as a value.
func TestPaddedID(t *testing.T) {
	var ends []string // characters to put at either end
	for _, rg := range unicode.White_Space.R16 {
		for r := rune(rg.Lo); r <= rune(rg.Hi); r += rune(rg.Stride) {
			ends = append(ends, string(r))
		}
	}
	for r := rune(0); r < 0x80; r++ {
		if r != 0 { // DuckDB text holds no NUL
			ends = append(ends, string(r))
		}
	}
	ends = append(ends, "\u0084", "\u0086", "\u009f", "\u00a1", "\u00e9", "\u180e", "\u200b", "\u200c", "\u2027", "\u202a",
		"\u2060", "\u3001", "\ufeff", "中", "😀", "\u0301")
	ids := []string{"", "A", "MT0000000001", "a b", "é", "x\u00a0y"}
	for _, e := range ends {
		ids = append(ids, e, e+e, e+"A1", "A1"+e, e+"A1"+e, "A"+e+"1", "é"+e, e+"é", "中"+e+"中")
	}
	conn := mustConn(t)
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE ids (n INTEGER, x VARCHAR)`); err != nil {
		t.Fatal(err)
	}
	var vals []string
	var args []any
	for i, id := range ids {
		vals = append(vals, "(?, ?)")
		args = append(args, i, id)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO ids VALUES `+strings.Join(vals, ", "), args...); err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"CASE WHEN padded_id(x) THEN true ELSE false END", "padded_id(x)"} {
		rows, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT n, %s FROM ids ORDER BY n`, form))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var i int
			var got sql.NullBool
			if err := rows.Scan(&i, &got); err != nil {
				t.Fatal(err)
			}
			id := ids[i]
			if want := readers.TrimID(id) != id; got.Bool != want || !got.Valid {
				t.Errorf("%s: %q (%U): %v, want %v", form, id, []rune(id), got, want)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n != len(ids) {
			t.Fatalf("%s: %d ids read, %d written", form, n, len(ids))
		}
	}
}
