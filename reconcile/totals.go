package reconcile

import (
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/paybatch/paybatch"
)

// OverflowError refuses a reconcile whose amounts of one currency add up
// beyond what a total holds exactly (int64 minor units, ±9223372036854775807):
// a total is never rounded and never wraps. Files are the inputs whose
// amounts make the total (the ledger's, the results', or both).
type OverflowError struct {
	Files    []string
	Currency paybatch.Currency
	Total    string // which total: "ledger total", "matched total", "difference (ledger - voids - provider)", …
}

func (e *OverflowError) Error() string {
	limit := paybatch.Money{Currency: e.Currency, Minor: math.MaxInt64}
	return fmt.Sprintf("%s: the %s amounts add up beyond what paybatch totals exactly (the %s would pass ±%s %s, %d minor units); "+
		"nothing was rounded or wrapped: split the file into smaller files and reconcile each",
		strings.Join(e.Files, ", "), e.Currency.Code(), e.Total, limit.String(), e.Currency.Code(), int64(math.MaxInt64))
}

// Unwrap makes an OverflowError a paybatch.ErrUnusableFile.
func (e *OverflowError) Unwrap() error { return paybatch.ErrUnusableFile }

// minorSum scans a sum of minor units from SQL. DuckDB sums BIGINTs into a
// HUGEINT (128 bits), exactly; a sum beyond int64 is Over, never cast (a
// cast of it fails with DuckDB's conversion error, which names no file).
type minorSum struct {
	Int64       int64
	Valid, Over bool
}

func (m *minorSum) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*m = minorSum{}
	case int64:
		*m = minorSum{Int64: x, Valid: true}
	case int32:
		*m = minorSum{Int64: int64(x), Valid: true}
	case *big.Int:
		if x.IsInt64() {
			*m = minorSum{Int64: x.Int64(), Valid: true}
		} else {
			*m = minorSum{Valid: true, Over: true}
		}
	default:
		return fmt.Errorf("a sum of minor units: unexpected %T", v)
	}
	return nil
}

// files names the inputs of one side (kindLedger, kindResults) or of both
// (""): their paths, and "the journal" for a journal's lines.
func (r *Reconciler) files(kind fileKind) []string {
	var out []string
	for _, s := range r.sources {
		if kind == "" || s.kind == kind {
			out = append(out, s.path)
		}
	}
	if kind != kindLedger && len(r.journals) > 0 {
		out = append(out, "the journal")
	}
	if len(out) == 0 {
		out = []string{"the inputs"}
	}
	return out
}

// addTotal adds a sum of one side's amounts to t, or refuses with an
// OverflowError naming that side's files when the sum or the total would
// pass int64.
func (r *Reconciler) addTotal(t paybatch.Totals, cur paybatch.Currency, s minorSum, kind fileKind, what string) error {
	if !s.Valid {
		return nil
	}
	if !s.Over && t.Add(paybatch.Money{Currency: cur, Minor: s.Int64}) == nil {
		return nil
	}
	return &OverflowError{Files: r.files(kind), Currency: cur, Total: what}
}

// checkDifference refuses a summary whose difference (ledger − voids −
// provider, Summary.Difference, computed by every report without a check)
// would pass int64 in some currency, though each total fits.
func (r *Reconciler) checkDifference(sum paybatch.Summary) error {
	diff := map[string]*big.Int{}
	cur := map[string]paybatch.Currency{}
	add := func(t paybatch.Totals, sign int64) {
		for code, m := range t {
			d, ok := diff[code]
			if !ok {
				d = new(big.Int)
				diff[code] = d
			}
			d.Add(d, new(big.Int).Mul(big.NewInt(m.Minor), big.NewInt(sign)))
			cur[code] = m.Currency
		}
	}
	add(sum.LedgerTotals, 1)
	add(sum.NoProviderAmount, -1)
	add(sum.ProviderTotals, -1)
	for code, d := range diff {
		if !d.IsInt64() {
			return &OverflowError{Files: r.files(""), Currency: cur[code], Total: "difference (ledger - voids - provider)"}
		}
	}
	return nil
}
