package job

import (
	"context"
	"iter"
	"sort"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
)

// DatePlan counts Direct Debit rows that asked for one collection/credit
// date and the date the provider uses: the one SmarterPay stored once it
// answered, before that the one Bacs will use (the next collectable
// banking day in London, smarterpay.Calendar.Collectable).
type DatePlan struct {
	Kind      paybatch.Kind
	Requested time.Time
	Date      time.Time // the date used; zero when none can be (Problem says why)
	Expected  bool      // Date is computed (not yet the provider's)
	Moved     bool      // Date differs from Requested
	Problem   string
	Rows      int
}

// planDates groups valid rows by kind and requested date and gives each
// group the date Bacs will use as of now.
func planDates(ctx context.Context, rows iter.Seq2[paybatch.Instruction, error], now time.Time) ([]DatePlan, error) {
	type k struct {
		kind paybatch.Kind
		day  time.Time
	}
	n := map[k]int{}
	for in, err := range rows {
		if err != nil {
			return nil, err
		}
		if in.CollectionDate.IsZero() {
			continue
		}
		n[k{in.Kind, in.CollectionDate}]++
	}
	cal, today := smarterpay.NewCalendar(), smarterpay.Today(now)
	out := make([]DatePlan, 0, len(n))
	for g, rows := range n {
		out = append(out, expectedDate(cal, today, g.kind, g.day, rows))
	}
	sortPlans(out)
	return out, ctx.Err()
}

// journalDates is the DatePlan of a journal's rows: the provider's date
// where it answered, the date Bacs would use today for rows still to send.
func journalDates(ctx context.Context, j journal.Journal, now time.Time) ([]DatePlan, error) {
	dj, ok := j.(interface {
		DateCounts(context.Context) ([]journal.DateCount, error)
	})
	if !ok {
		return nil, nil // a backend without it: no dates shown (both DuckDB and PostgreSQL have it)
	}
	counts, err := dj.DateCounts(ctx)
	if err != nil {
		return nil, err
	}
	cal, today := smarterpay.NewCalendar(), smarterpay.Today(now)
	var out []DatePlan
	for _, c := range counts {
		switch {
		case !c.ProviderDate.IsZero():
			out = append(out, DatePlan{Kind: c.Kind, Requested: c.Requested, Date: c.ProviderDate,
				Moved: !c.ProviderDate.Equal(c.Requested), Rows: c.Rows})
		case c.Open:
			out = append(out, expectedDate(cal, today, c.Kind, c.Requested, c.Rows))
		}
	}
	sortPlans(out)
	return mergePlans(out), nil
}

func expectedDate(cal *smarterpay.Calendar, today time.Time, kind paybatch.Kind, requested time.Time, rows int) DatePlan {
	p := DatePlan{Kind: kind, Requested: requested, Expected: true, Rows: rows}
	d, moved, err := cal.Collectable(requested, today)
	if err != nil {
		p.Problem = err.Error()
		return p
	}
	p.Date, p.Moved = d, moved
	return p
}

func sortPlans(ps []DatePlan) {
	sort.Slice(ps, func(i, k int) bool {
		a, b := ps[i], ps[k]
		switch {
		case a.Kind != b.Kind:
			return a.Kind < b.Kind
		case !a.Requested.Equal(b.Requested):
			return a.Requested.Before(b.Requested)
		case !a.Date.Equal(b.Date):
			return a.Date.Before(b.Date)
		}
		return !a.Expected && b.Expected
	})
}

// mergePlans adds up neighbours that say the same thing.
func mergePlans(ps []DatePlan) []DatePlan {
	var out []DatePlan
	for _, p := range ps {
		if n := len(out); n > 0 {
			q := &out[n-1]
			if q.Kind == p.Kind && q.Requested.Equal(p.Requested) && q.Date.Equal(p.Date) && q.Expected == p.Expected && q.Problem == p.Problem {
				q.Rows += p.Rows
				continue
			}
		}
		out = append(out, p)
	}
	return out
}
