package smarterpay

import (
	"encoding/json"
	"testing"
	"time"
)

func TestCalendar(t *testing.T) {
	c := NewCalendar()
	for _, tc := range []struct {
		date string
		open bool
	}{
		{"2018-03-29", true},  // Maundy Thursday
		{"2018-03-30", false}, // Good Friday
		{"2018-04-02", false}, // Easter Monday
		{"2018-04-03", true},
		{"2026-12-25", false}, // Christmas, Friday
		{"2026-12-26", false}, // Boxing Day, Saturday
		{"2026-12-28", false}, // Boxing Day observed
		{"2026-12-29", true},
		{"2027-01-01", false}, // New Year's Day
		{"2026-05-04", false}, // Early May bank holiday
		{"2026-05-25", false}, // Spring bank holiday
		{"2026-08-31", false}, // Summer bank holiday (England & Wales, not Scotland's 3 Aug)
		{"2026-08-03", true},
		{"2026-03-17", true},  // St Patrick's Day is a Northern Ireland holiday only
		{"2026-11-21", false}, // Saturday
		{"2026-11-22", false}, // Sunday
	} {
		if got := c.IsBankingDay(day(tc.date)); got != tc.open {
			t.Errorf("IsBankingDay(%s) = %v, want %v", tc.date, got, tc.open)
		}
	}
	for _, tc := range []struct{ today, earliest string }{
		{"2018-03-19", "2018-03-23"}, // Mon → Fri
		{"2018-03-23", "2018-03-29"}, // Fri: Mon, Tue, Wed clear → Thu
		{"2018-03-24", "2018-03-29"}, // Sat: Mon, Tue, Wed → Thu
		{"2018-03-27", "2018-04-04"}, // Tue: Wed, Thu, (Good Fri, Easter Mon closed) Tue → Wed
		{"2026-12-21", "2026-12-29"},
		{"2026-12-23", "2026-12-31"}, // Thu 24, Tue 29, Wed 30 → Thu 31
	} {
		if got := c.EarliestCollection(day(tc.today)).Format(DateLayout); got != tc.earliest {
			t.Errorf("EarliestCollection(%s) = %s, want %s", tc.today, got, tc.earliest)
		}
	}
	if _, _, err := c.Collectable(day("2018-03-18"), day("2018-03-19")); err == nil {
		t.Error("a past date was collectable")
	}
}

func TestParseDate(t *testing.T) {
	for _, s := range []string{"", "2018-3-30", "2018-03-30T00:00:00Z", "30/03/2018", "2018-02-29", "2018-13-01", " 2018-03-30", "+018-03-30"} {
		if _, err := ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
	if d, err := ParseDate("2020-02-29"); err != nil || d.Format(DateLayout) != "2020-02-29" {
		t.Errorf("leap day: %v %v", d, err)
	}
}

func TestPence(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{`2532`, 2532, true}, {`"2532"`, 2532, true}, {`0`, 0, true}, {`"0"`, 0, true},
		{`25.32`, 0, false}, {`"25.32"`, 0, false}, {`2.5e3`, 0, false}, {`-1`, 0, false}, {`"-1"`, 0, false},
		{`""`, 0, false}, {`null`, 0, false}, {`true`, 0, false}, {`"12a"`, 0, false}, {`99999999999999999999`, 0, false},
		{`9007199254740992`, 9007199254740992, true}, {`9007199254740993`, 0, false}, {`" 1"`, 0, false},
	} {
		var p Pence
		err := json.Unmarshal([]byte(tc.in), &p)
		if (err == nil) != tc.ok || (tc.ok && int64(p) != tc.want) {
			t.Errorf("%s → %d, %v; want %d ok=%v", tc.in, p, err, tc.want, tc.ok)
		}
	}
	b, _ := json.Marshal(struct{ A StringPence }{2532})
	if string(b) != `{"A":"2532"}` {
		t.Errorf("StringPence renders %s", b)
	}
}

// FuzzCollectable checks the date rule's invariants for any date string and
// any "today" within a few years: never panics; a valid result is a banking
// day, not before the request, not before the earliest collection, and
// within three weeks of max(request, earliest).
func FuzzCollectable(f *testing.F) {
	for _, s := range []string{"2018-03-30", "2026-12-25", "2027-01-01", "2018-03-18", "2018-02-30", "x", "2026-12-2", "9999-12-31", "0000-01-01"} {
		f.Add(s, uint16(0))
		f.Add(s, uint16(3000))
	}
	c := NewCalendar()
	base := day("2017-01-01")
	f.Fuzz(func(t *testing.T, s string, offset uint16) {
		today := base.AddDate(0, 0, int(offset%4000))
		d, err := ParseDate(s)
		if err != nil {
			return
		}
		got, moved, err := c.Collectable(d, today)
		if d.Before(today) {
			if err == nil {
				t.Fatalf("%s before today %s accepted", s, today.Format(DateLayout))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		earliest := c.EarliestCollection(today)
		from := d
		if from.Before(earliest) {
			from = earliest
		}
		if !c.IsBankingDay(got) || got.Before(d) || got.Before(earliest) || got.Sub(from) > 21*24*time.Hour {
			t.Fatalf("%s (today %s) → %s", s, today.Format(DateLayout), got.Format(DateLayout))
		}
		if moved != !got.Equal(d) {
			t.Fatalf("moved=%v for %s → %s", moved, s, got.Format(DateLayout))
		}
	})
}
