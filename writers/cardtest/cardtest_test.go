package cardtest

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

func TestNumbersAreFoundUntilMasked(t *testing.T) {
	for _, n := range Numbers {
		if !Luhn(n) {
			t.Errorf("%q fails Luhn", n)
		}
		text := "refund for card " + n + ", thanks"
		if got := Find(text); len(got) != 1 || got[0] != n {
			t.Errorf("Find(%q) = %q", text, got)
		}
		if got := Find(paybatch.MaskCardNumbers(text)); len(got) != 0 {
			t.Errorf("masked %q still has %q", paybatch.MaskCardNumbers(text), got)
		}
	}
}

func TestFindIgnores(t *testing.T) {
	for _, s := range []string{
		"4111111111111112",         // fails Luhn
		"411111******1111",         // masked
		"123456789012",             // 12 digits
		"41111111111111111111",     // 20 digits
		"amount 1234.56 id 987654", // short runs
		"paybatch_run_duration_seconds 1.9193846209999998", // a float's fraction (CI, session 14)
	} {
		if got := Find(s); len(got) != 0 {
			t.Errorf("Find(%q) = %q", s, got)
		}
	}
}

func TestFileFormats(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("id,reason\n1,card "+Numbers[0]+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"ok":"411111******1111"}`), 0o644)
	db, err := sql.Open("duckdb", filepath.Join(dir, "c.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE t AS SELECT 'x ' || repeat('y', 100) || ' ` + Numbers[1] + `' AS reason FROM range(3000)`,
		`COPY (SELECT 1 AS n, '` + Numbers[2] + `' AS v) TO '` + filepath.Join(dir, "d.parquet") + `' (FORMAT parquet)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	f := excelize.NewFile()
	f.SetCellStr("Sheet1", "B7", "card "+Numbers[3])
	if err := f.SaveAs(filepath.Join(dir, "e.xlsx")); err != nil {
		t.Fatal(err)
	}
	leaks, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, l := range leaks {
		per[filepath.Ext(strings.SplitN(l.Where, "!", 2)[0])]++
	}
	want := map[string]int{".csv": 1, ".duckdb": 3000, ".parquet": 1, ".xlsx": 1}
	if fmt.Sprint(per) != fmt.Sprint(want) {
		t.Errorf("leaks per format %v, want %v", per, want)
	}
}

// TestFindAfterPoint: only a decimal's fraction is passed over; a number
// after a point that does not follow a digit, or after "1. ", is found.
func TestFindAfterPoint(t *testing.T) {
	for _, s := range []string{"card.4111111111111111", "1. 4111111111111111", ".4111111111111111"} {
		if got := Find(s); len(got) != 1 || got[0] != "4111111111111111" {
			t.Errorf("Find(%q) = %q, want the card number", s, got)
		}
	}
}
