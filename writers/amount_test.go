package writers

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/shopspring/decimal"
)

// TestAmountFloatPathIsExact backs the argument in amount.go: every amount
// with |minor| < 10^15 written through excelize's float path comes out as
// exactly Money.String() (value-equal, trailing zeros dropped), for every
// exponent in use — checked up to 10^15, beyond the 10^14 cut-off in use. Boundaries plus 300k random amounts.
func TestAmountFloatPathIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, code := range []string{"USD", "KWD", "BHD", "CLF"} { // exponents 2, 3, 3, 4
		cur := paybatch.MustCurrency(code)
		const limit = 1_000_000_000_000_000 // 10^15: the argument holds up to 15 digits
		minors := []int64{1, -1, 5, 10, 99, 100, 101, 999, 1001, 123456789, maxExactMinor - 1, -(maxExactMinor - 1),
			limit - 1, -(limit - 1), limit - 3, 999_999_999_999_990, 900_719_925_474_099}
		for range 75_000 {
			n := rng.Int64N(limit)
			if rng.IntN(2) == 0 {
				n = -n
			}
			minors = append(minors, n, rng.Int64N(1_000_000)) // large and everyday amounts
		}
		for _, minor := range minors {
			m := paybatch.Money{Currency: cur, Minor: minor}
			f, err := strconv.ParseFloat(m.String(), 64) // as amountValue does
			if err != nil {
				t.Fatal(err)
			}
			if v, numeric := amountValue(m); numeric && v.(float64) != f {
				t.Fatalf("amountValue(%s) = %v", m.String(), v)
			}
			xmlText := strconv.FormatFloat(f, 'f', -1, 64) // what excelize writes
			got, err := decimal.NewFromString(xmlText)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(m.Decimal()) {
				t.Fatalf("%s %s: sheet XML would hold %s", code, m.String(), xmlText)
			}
		}
	}
}

// Above 15 significant digits a double cannot hold every amount (e.g.
// 9007199254740.993 KWD is not a double), so those are written as text.
func TestAmountBeyondDoublePrecisionIsText(t *testing.T) {
	m := paybatch.Money{Currency: paybatch.MustCurrency("KWD"), Minor: 9007199254740993}
	f, _ := strconv.ParseFloat(m.String(), 64)
	if strconv.FormatFloat(f, 'f', -1, 64) == m.String() {
		t.Fatal("counterexample no longer a counterexample")
	}
	if v, numeric := amountValue(m); numeric || v != "9007199254740.993" {
		t.Errorf("amountValue = %v, %v; want exact text", v, numeric)
	}
	j := paybatch.Money{Currency: paybatch.MustCurrency("JPY"), Minor: 9007199254740993}
	if v, numeric := amountValue(j); numeric || v != "9007199254740993" {
		t.Errorf("JPY amountValue = %v, %v; want exact text", v, numeric)
	}
	if v, numeric := amountValue(paybatch.Money{Currency: j.Currency, Minor: maxExactMinor - 1}); !numeric || v != maxExactMinor-1 {
		t.Errorf("JPY amountValue = %v, %v; want the integer verbatim", v, numeric)
	}
	for _, minor := range []int64{maxExactMinor, -maxExactMinor, 999_999_999_999_999} {
		if _, numeric := amountValue(paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: minor}); numeric {
			t.Errorf("USD minor %d (15 digits) written as a number", minor)
		}
	}
}

// TestXLSXAmountXMLText checks the actual <v> text in the streamed sheet.
func TestXLSXAmountXMLText(t *testing.T) {
	amounts := []*paybatch.Money{
		money(t, "0.01", "USD"), money(t, "1234567.89", "USD"), money(t, "999999999999.99", "USD"), money(t, "9999999999999.99", "USD"),
		money(t, "0.1", "USD"), money(t, "0.3", "USD"), money(t, "2.675", "KWD"), money(t, "99999999999.999", "KWD"), money(t, "999999999999.999", "KWD"),
		money(t, "-12.5", "EUR"), money(t, "1", "JPY"),
		{Currency: paybatch.MustCurrency("JPY"), Minor: 9007199254740993}, {Currency: paybatch.MustCurrency("KWD"), Minor: 9007199254740993},
	}
	var rows []paybatch.ReconRow
	for _, a := range amounts {
		rows = append(rows, paybatch.ReconRow{Category: paybatch.CatMatched, LedgerAmount: a})
	}
	path := filepath.Join(t.TempDir(), "a.xlsx")
	if err := WriteXLSX(context.Background(), path, Report{Matched: seqOf(rows)}, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	xml := zipFiles(t, path)["xl/worksheets/sheet3.xml"]
	// Rows and cells carry no r="…" (the lean writer leaves it out): the
	// third cell of each row (an empty one is <c/>) is the ledger amount.
	rowRE := regexp.MustCompile(`<row[^>]*>(.*?)</row>`)
	cellRE := regexp.MustCompile(`<c(?: [^>]*)?/>|<c(?: [^>]*)?>(?:<v>([^<]*)</v>|<is><t>([^<]*)</t></is>)</c>`)
	found := 0
	for i, rm := range rowRE.FindAllSubmatch(xml, -1) {
		if i == 0 {
			continue // header
		}
		cells := cellRE.FindAllSubmatch(rm[1], -1)
		if len(cells) < 3 {
			t.Errorf("row %d: %d cells: %s", i+1, len(cells), rm[1])
			continue
		}
		m := cells[2]
		want := amounts[i-1]
		text := string(m[1]) + string(m[2])
		got, err := decimal.NewFromString(text)
		if err != nil || !got.Equal(want.Decimal()) {
			t.Errorf("C%d XML text %q, want %s", i+1, text, want.String())
		}
		found++
	}
	if found != len(amounts) {
		t.Errorf("found %d amount cells, want %d", found, len(amounts))
	}
}
