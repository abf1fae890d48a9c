package paybatch

import (
	"encoding/json"
	"fmt"
)

// summaryJSON is the machine-readable shape of a Summary, shared by
// `reconcile --json`, the report writers and cron consumers. Amounts are
// strings in major units so no consumer ever sees a float.
type summaryJSON struct {
	Categories     map[Category]categoryJSON `json:"categories"`
	MatchRate      float64                   `json:"match_rate"`
	LedgerTotals   map[string]string         `json:"ledger_totals"`
	ProviderTotals map[string]string         `json:"provider_totals"`
	// ledger amounts of ids the provider did without an amount (voids)
	NoProviderAmount map[string]string `json:"no_provider_amount"`
	Difference       map[string]string `json:"difference"`
}

type categoryJSON struct {
	Count  int64             `json:"count"`
	Totals map[string]string `json:"totals"`
}

// MarshalJSON renders {"categories":{"matched":{"count":N,"totals":{"USD":"123.45"}},…},
// "match_rate":…,"ledger_totals":{…},"provider_totals":{…},"no_provider_amount":{…},
// "difference":{…}}.
// Every category appears, with a zero count when empty.
func (s Summary) MarshalJSON() ([]byte, error) {
	out := summaryJSON{
		Categories:       make(map[Category]categoryJSON, len(Categories)),
		MatchRate:        s.MatchRate,
		LedgerTotals:     orEmpty(s.LedgerTotals).Strings(),
		ProviderTotals:   orEmpty(s.ProviderTotals).Strings(),
		NoProviderAmount: orEmpty(s.NoProviderAmount).Strings(),
		Difference:       s.Difference().Strings(),
	}
	for _, c := range Categories {
		ct := s.Categories[c]
		out.Categories[c] = categoryJSON{Count: ct.Count, Totals: orEmpty(ct.Totals).Strings()}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the shape MarshalJSON writes.
func (s *Summary) UnmarshalJSON(b []byte) error {
	var in summaryJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	parse := func(m map[string]string) (Totals, error) {
		t := Totals{}
		for code, v := range m {
			cur, err := ParseCurrency(code)
			if err != nil {
				return nil, err
			}
			amt, err := ParseSignedMoney(v, cur)
			if err != nil {
				return nil, fmt.Errorf("%s total: %w", code, err)
			}
			t[cur.Code()] = amt
		}
		return t, nil
	}
	var err error
	out := Summary{Categories: map[Category]CategoryTotals{}, MatchRate: in.MatchRate}
	for c, ct := range in.Categories {
		tot, err := parse(ct.Totals)
		if err != nil {
			return fmt.Errorf("category %s: %w", c, err)
		}
		out.Categories[c] = CategoryTotals{Count: ct.Count, Totals: tot}
	}
	if out.LedgerTotals, err = parse(in.LedgerTotals); err != nil {
		return fmt.Errorf("ledger_totals: %w", err)
	}
	if out.ProviderTotals, err = parse(in.ProviderTotals); err != nil {
		return fmt.Errorf("provider_totals: %w", err)
	}
	if out.NoProviderAmount, err = parse(in.NoProviderAmount); err != nil {
		return fmt.Errorf("no_provider_amount: %w", err)
	}
	*s = out
	return nil
}

func orEmpty(t Totals) Totals {
	if t == nil {
		return Totals{}
	}
	return t
}
