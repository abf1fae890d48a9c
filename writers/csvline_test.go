package writers

import (
	"bytes"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

// reconRecord is a row as the fields encoding/csv wrote before
// appendReconLine (the reference it is compared with).
func reconRecord(rec []string, r paybatch.ReconRow) {
	amount := func(m *paybatch.Money) (string, string) {
		if m == nil {
			return "", ""
		}
		return m.String(), m.Currency.Code()
	}
	rec[0] = string(r.Category)
	rec[1] = csvText(r.MerchantTxID)
	rec[2], rec[3] = amount(r.LedgerAmount)
	rec[4] = NeutraliseCSV(r.LedgerStatus)
	rec[5], rec[6] = amount(r.ProviderAmount)
	rec[7] = NeutraliseCSV(r.ProviderStatus)
	rec[8] = csvText(r.ProviderID)
	rec[9] = NeutraliseCSV(r.Reason)
	rec[10] = csvText(r.Source.File)
	rec[11] = csvText(r.Source.Sheet)
	rec[12] = ""
	if r.Source.Row > 0 {
		rec[12] = strconv.Itoa(r.Source.Row)
	}
	rec[13], rec[14], rec[15] = "", "", ""
	if !r.RequestedDate.IsZero() {
		rec[13] = r.RequestedDate.Format("2006-01-02")
	}
	if !r.ProviderDate.IsZero() {
		rec[14] = r.ProviderDate.Format("2006-01-02")
	}
	if r.DateMoved() {
		rec[15] = "moved"
	}
}

// encodingCSVLine is r through reconRecord and encoding/csv.
func encodingCSVLine(t testing.TB, r paybatch.ReconRow) string {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	rec := make([]string, len(ReconColumns))
	reconRecord(rec, r)
	if err := cw.Write(rec); err != nil {
		t.Fatal(err)
	}
	cw.Flush()
	return buf.String()
}

// csvEdgeTexts: text that encoding/csv quotes (comma, quote, CR, LF, `\.`,
// a leading Unicode space) or that is neutralised or masked.
var csvEdgeTexts = []string{"", "plain", "a,b", `say "hi"`, "line\nbreak", "cr\rhere", "\r\n", `\.`, `\.x`, ` lead`,
	"\tTAB", "\u00a0nbsp", "\u2003em space", "\u0085nel", "trail ", "=SUM(A1)", "+1", "-2", "@x", "'q", `""`, `"`,
	"4111 1111 1111 1111", "card 4111-1111-1111-1111, \"declined\"", "ü,é", "\xff\xfe bad utf8", "x\x00y"}

// TestReconLineEqualsEncodingCSV: appendReconLine writes every row byte for
// byte as reconRecord through encoding/csv — the header too, and every
// amount Money.String formats (each exponent, zero, negative, the int64
// limits).
func TestReconLineEqualsEncodingCSV(t *testing.T) {
	var curs []paybatch.Currency
	for _, code := range []string{"USD", "JPY", "KWD", "CLF"} {
		c, err := paybatch.ParseCurrency(code)
		if err != nil {
			t.Fatal(err)
		}
		curs = append(curs, c)
	}
	minors := []int64{0, 1, -1, 5, -5, 9, 10, 99, 100, 101, -100, 12345, -12345, 1000000, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	var rows []paybatch.ReconRow
	for _, c := range curs {
		for _, m := range minors {
			rows = append(rows, paybatch.ReconRow{Category: paybatch.CatMatched, MerchantTxID: "A",
				LedgerAmount: &paybatch.Money{Currency: c, Minor: m}, ProviderAmount: &paybatch.Money{Currency: c, Minor: -m}})
		}
	}
	// the same minor units in another currency, in one row and the next
	// (the amount cache keys on both)
	for _, m := range minors {
		rows = append(rows, paybatch.ReconRow{Category: paybatch.CatCurrencyMismatch, MerchantTxID: "C",
			LedgerAmount: &paybatch.Money{Currency: curs[0], Minor: m}, ProviderAmount: &paybatch.Money{Currency: curs[1], Minor: m}})
		rows = append(rows, paybatch.ReconRow{Category: paybatch.CatCurrencyMismatch, MerchantTxID: "C",
			LedgerAmount: &paybatch.Money{Currency: curs[2], Minor: m}, ProviderAmount: &paybatch.Money{Currency: curs[2], Minor: m}})
	}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, s := range csvEdgeTexts {
		rows = append(rows, paybatch.ReconRow{Category: paybatch.CatAmountMismatch, MerchantTxID: s, LedgerStatus: s,
			ProviderStatus: s, ProviderID: s, Reason: s, Source: paybatch.Source{File: s, Sheet: s, Row: 7},
			RequestedDate: day, ProviderDate: day.AddDate(0, 0, 1)})
	}
	rng := rand.New(rand.NewPCG(19, 6))
	pick := func() string {
		var b []byte
		for range rng.IntN(4) {
			b = append(b, csvEdgeTexts[rng.IntN(len(csvEdgeTexts))]...)
		}
		return string(b)
	}
	for range 2000 {
		r := paybatch.ReconRow{Category: paybatch.Categories[rng.IntN(len(paybatch.Categories))], MerchantTxID: pick(),
			LedgerStatus: pick(), ProviderStatus: pick(), ProviderID: pick(), Reason: pick(),
			Source: paybatch.Source{File: pick(), Sheet: pick(), Row: rng.IntN(3) * rng.IntN(1_000_000)}}
		if rng.IntN(2) == 0 {
			r.LedgerAmount = &paybatch.Money{Currency: curs[rng.IntN(len(curs))], Minor: rng.Int64() >> rng.IntN(64)}
		}
		if rng.IntN(2) == 0 {
			r.ProviderAmount = &paybatch.Money{Currency: curs[rng.IntN(len(curs))], Minor: -(rng.Int64() >> rng.IntN(64))}
		}
		if rng.IntN(3) == 0 {
			r.RequestedDate = day.AddDate(0, 0, rng.IntN(3))
		}
		if rng.IntN(3) == 0 {
			r.ProviderDate = day.AddDate(0, 0, rng.IntN(3))
		}
		rows = append(rows, r)
	}
	// without the cache, and with one cache over all the rows (fields
	// repeated from the row before, and not)
	var c lineCache
	for _, r := range rows {
		want := encodingCSVLine(t, r)
		if got := string(appendReconLine(nil, r, nil)); got != want {
			t.Fatalf("row %+v:\n got %q\nwant %q", r, got, want)
		}
		for range 2 {
			if got := string(appendReconLine(nil, r, &c)); got != want {
				t.Fatalf("row %+v, cached:\n got %q\nwant %q", r, got, want)
			}
		}
	}
	// the header, as CreateCSVExport writes it
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write(ReconColumns)
	cw.Flush()
	var hdr []byte
	for i, h := range ReconColumns {
		if i > 0 {
			hdr = append(hdr, ',')
		}
		hdr = appendCSVField(hdr, h)
	}
	if got := string(hdr) + "\n"; got != buf.String() {
		t.Fatalf("header %q, want %q", got, buf.String())
	}
}

// FuzzCSVField: any text is one field as encoding/csv writes it.
func FuzzCSVField(f *testing.F) {
	for _, s := range csvEdgeTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := paybatch.ReconRow{Category: paybatch.CatMatched, MerchantTxID: s, LedgerStatus: s, ProviderStatus: s,
			ProviderID: s, Reason: s, Source: paybatch.Source{File: s, Sheet: s}}
		if got, want := string(appendReconLine(nil, r, nil)), encodingCSVLine(t, r); got != want {
			t.Fatalf("%q:\n got %q\nwant %q", s, got, want)
		}
	})
}
