package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/readers"
)

// The input differential test (issue #15): random files in every CSV
// dialect and as XLSX, read through the batch path (readers.Validate) and
// through the ledger path (LoadLedger + Run: DuckDB's CSV reader or readers
// in Go) and through the results path (LoadResults + Run, on the road the
// file takes: DuckDB for a plain CSV, Go for the other dialects),
// give identical ids, amounts, currencies and positions; a file with a
// record one path refuses is refused by the others too. Every file has a
// status column: the batch path ignores it, the ledger reads it as the
// expected status, the results path as the provider's status. The same files
// are also read with DuckDB's fast road refused (forceGo), so both roads of
// the ledger path are held to readers.

type inLine struct {
	row   int
	id    string
	minor int64
	cur   string
}

type dialect struct {
	name      string
	delim     string
	eol       string
	bom       bool
	utf16     bool
	sepLine   bool
	quoteAll  bool
	xlsx      bool
	xlsxFloat bool // amounts as numeric cells holding Excel's binary doubles
}

var dialects = []dialect{
	{name: "comma-lf", delim: ",", eol: "\n"},
	{name: "comma-crlf-bom", delim: ",", eol: "\r\n", bom: true},
	{name: "semicolon-cr", delim: ";", eol: "\r"},
	{name: "tab-quoted", delim: "\t", eol: "\n", quoteAll: true},
	{name: "pipe-sep", delim: "|", eol: "\r\n", sepLine: true},
	{name: "utf16-comma", delim: ",", eol: "\r\n", utf16: true},
	{name: "xlsx-text", xlsx: true},
	{name: "xlsx-numbers", xlsx: true, xlsxFloat: true},
}

// genRows makes rows: terminal, tx ref, order ref, id, amount, currency,
// status. Some order refs hold a line break (quoted in a CSV), and between
// the records of a CSV there are blank lines (a nil row) and records of
// empty fields: row numbers are lines, not records (paybatch.Source.Row), so
// a path that numbers records instead misnumbers every later row.
// hostile adds one record both paths must refuse.
func genRows(rng *rand.Rand, n int, hostile bool, d dialect) [][]string {
	spaces := []string{"", "", "", " ", "\u00a0", "\u202f", "\u3000", "\t"}
	var rows [][]string
	for i := range n {
		id := fmt.Sprintf("M%05d", i)
		if rng.IntN(5) == 0 {
			id = strings.ToLower(id) + "x"
		}
		if rng.IntN(4) == 0 {
			id = pick(rng, spaces) + id + pick(rng, spaces)
		}
		cur := pick(rng, []string{"USD", "GBP", "JPY", "KWD", "usd", " EUR\u00a0"})
		exp := paybatch.MustCurrency(strings.TrimSpace(strings.Trim(cur, "\u00a0"))).Exponent()
		minor := 1 + rng.Int64N(10_000_000)
		amount := paybatch.Money{Currency: paybatch.MustCurrency(strings.ToUpper(strings.TrimSpace(strings.Trim(cur, "\u00a0")))), Minor: minor}.String()
		switch rng.IntN(6) {
		case 0:
			amount = "000" + amount
		case 1:
			if exp > 0 {
				amount += "000"
			} else {
				amount += ".000"
			}
		case 2:
			amount = pick(rng, spaces) + amount + pick(rng, spaces)
		}
		if d.xlsxFloat && rng.IntN(2) == 0 && exp == 2 {
			// what Excel stores for a computed amount: a binary double printed in full
			amount = fmt.Sprintf("%.17g", float64(minor)/100) // the test oracle only; never money code
		}
		status := pick(rng, []string{"APPROVED", "approved", "successful", " APPROVED "})
		order := "OR7B9E1D"
		if rng.IntN(8) == 0 {
			br := pick(rng, []string{"\n", "\r\n", "\n\n"})
			if d.eol == "\r" {
				br = "\r" // a CR-only file's line break
			}
			order = "OR7B" + br + "9E1D"
		}
		if !d.xlsx {
			switch rng.IntN(10) {
			case 0:
				rows = append(rows, nil)
			case 1:
				rows = append(rows, nil, nil)
			case 2:
				rows = append(rows, make([]string, len(diffHeader)))
			}
		}
		rows = append(rows, []string{"ABC123", "TX8A3F2C", order, id, amount, cur, status})
	}
	if !d.xlsx && rng.IntN(3) == 0 {
		rows = append(rows, nil) // a blank line at the end
	}
	if hostile && !d.xlsx {
		i := rng.IntN(len(rows))
		for rows[i] == nil || rows[i][0] == "" {
			i = (i + 1) % len(rows)
		}
		switch rng.IntN(4) {
		case 0: // an unquoted thousands separator: a field too many
			rows[i] = append(rows[i][:4:4], "1", "234.00", "USD", "APPROVED")
		case 1: // a field too few
			rows[i] = rows[i][:5]
		case 2: // over-precise
			rows[i][4], rows[i][5] = "1.005", "USD"
		case 3: // not a plain number
			rows[i][4] = "1e3"
		}
	} else if hostile {
		rows[rng.IntN(len(rows))][4] = "12.345x"
	}
	return rows
}

var diffHeader = []string{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency", "status"}

func writeDialect(t *testing.T, dir string, d dialect, rows [][]string) string {
	t.Helper()
	if d.xlsx {
		f := excelize.NewFile()
		defer f.Close()
		f.SetSheetRow("Sheet1", "A1", &diffHeader)
		for i, r := range rows {
			for j, v := range r {
				ref, _ := excelize.CoordinatesToCellName(j+1, i+2)
				if j == 4 && d.xlsxFloat && strings.Contains(v, "0000000") {
					f.SetCellDefault("Sheet1", ref, v)
				} else {
					f.SetCellStr("Sheet1", ref, v)
				}
			}
		}
		p := filepath.Join(dir, d.name+".xlsx")
		if err := f.SaveAs(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var b strings.Builder
	if d.sepLine {
		b.WriteString("sep=" + d.delim + d.eol)
	}
	line := func(r []string) {
		// a nil row is a blank line
		for j, v := range r {
			if j > 0 {
				b.WriteString(d.delim)
			}
			if d.quoteAll || strings.ContainsAny(v, d.delim+"\"\r\n") {
				v = `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
			}
			b.WriteString(v)
		}
		b.WriteString(d.eol)
	}
	line(diffHeader)
	for _, r := range rows {
		line(r)
	}
	data := []byte(b.String())
	if d.bom {
		data = append([]byte("\ufeff"), data...)
	}
	if d.utf16 {
		var buf bytes.Buffer
		buf.Write([]byte{0xFF, 0xFE})
		for _, u := range utf16.Encode([]rune(b.String())) {
			buf.WriteByte(byte(u))
			buf.WriteByte(byte(u >> 8))
		}
		data = buf.Bytes()
	}
	p := filepath.Join(dir, d.name+".csv")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// batchLines reads path as a refund batch; refused reports any reject.
func batchLines(t *testing.T, path string) (lines []inLine, refused error) {
	t.Helper()
	o := readers.Options{Kind: paybatch.KindRefund} // no provider rules: what the reader parses
	in, err := readers.OpenInput(path, 0, nil)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	b, err := readers.OpenReader(in.R, in.Size, in.Name, o)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	for in, err := range b.All(context.Background()) {
		if err != nil {
			return nil, err
		}
		lines = append(lines, inLine{row: in.Source.Row, id: in.MerchantTxID, minor: in.Amount.Minor, cur: in.Amount.Currency.Code()})
	}
	return lines, nil
}

// sideLines reads path as a ledger or as a results file (beside a ledger
// of one line whose id is none of the file's) through Load and Run, and
// returns the file's lines as loaded; forceGo refuses DuckDB's CSV reader.
func sideLines(t *testing.T, path string, kind fileKind, forceGo bool) (lines []inLine, refused error) {
	t.Helper()
	ctx := context.Background()
	r := MustOpen(t, "")
	table := "ledger"
	if kind == kindResults {
		table = "provider"
		other := filepath.Join(t.TempDir(), "other-ledger.csv")
		if err := os.WriteFile(other, []byte("merchant_transaction_id,amount,currency\nnot-in-the-file,1.00,USD\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.LoadLedger(ctx, other, ""); err != nil {
			t.Fatal(err)
		}
		if err := r.LoadResults(ctx, path, ""); err != nil {
			return nil, err
		}
	} else if err := r.LoadLedger(ctx, path, ""); err != nil {
		return nil, err
	}
	s := r.sources[len(r.sources)-1]
	if forceGo && s.duckCSV() {
		conn, err := r.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stageCSV(ctx, conn, s); err != nil {
			conn.Close()
			return nil, err
		}
		conn.Close()
	}
	if _, err := r.Run(ctx); err != nil {
		return nil, err
	}
	// the lines as loaded, with their row numbers (build: the exact path)
	conn, err := r.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := r.build(ctx, conn); err != nil {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT source_row, merchant_transaction_id, amount_minor, currency FROM %s WHERE seq // 10000000000 = %d ORDER BY seq`, table, s.n))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var l inLine
		if err := rows.Scan(&l.row, &l.id, &l.minor, &l.cur); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	return lines, rows.Err()
}

func TestInputDifferential(t *testing.T) {
	// 2 files per dialect (one hostile); each read opens a DuckDB, so
	// PAYBATCH_DIFF_FILES=N reads more (seeds are deterministic)
	files := 2
	if n, err := strconv.Atoi(os.Getenv("PAYBATCH_DIFF_FILES")); err == nil && n > 0 {
		files = n
	}
	for _, d := range dialects {
		for i := range files {
			seed := uint64(1000*i + len(d.name))
			t.Run(fmt.Sprintf("%s/%d", d.name, i), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 15))
				hostile := i%2 == 1
				rows := genRows(rng, 5+rng.IntN(60), hostile, d)
				path := writeDialect(t, t.TempDir(), d, rows)
				blines, berr := batchLines(t, path)
				for _, kind := range []fileKind{kindLedger, kindResults} {
					for _, forceGo := range []bool{false, true} {
						if kind == kindResults && forceGo {
							// the Go road is the same code for both kinds
							// (stageCSV); results take the road the file
							// gives (DuckDB for plain CSVs, Go for the others)
							continue
						}
						llines, lerr := sideLines(t, path, kind, forceGo)
						if (berr != nil) != (lerr != nil) {
							t.Fatalf("%s forceGo=%v: batch path %v, %s path %v", kind, forceGo, berr, kind, lerr)
						}
						if berr != nil {
							continue
						}
						if len(blines) != len(llines) {
							t.Fatalf("%s forceGo=%v: batch %d lines, %s %d", kind, forceGo, len(blines), kind, len(llines))
						}
						for k := range blines {
							if blines[k] != llines[k] {
								t.Errorf("%s forceGo=%v line %d: batch %+v, %s %+v", kind, forceGo, k, blines[k], kind, llines[k])
							}
						}
					}
				}
				if hostile && berr == nil {
					t.Errorf("a hostile file was accepted by both paths")
				}
			})
		}
	}
}
