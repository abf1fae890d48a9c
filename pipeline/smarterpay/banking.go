package smarterpay

import (
	"errors"
	"fmt"
	"sync"
	"time"
	_ "time/tzdata" // Europe/London must resolve even on hosts without a zoneinfo database

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/gb"
)

// LeadDays is the Bacs lead time: the number of clear banking days that must
// lie between "today" and a collection or credit date.
const LeadDays = 3

// Calendar answers banking-day questions for Bacs (England and Wales bank
// holidays from github.com/rickar/cal/v2/gb, weekends closed). Dates are civil
// dates: time.Time values at midnight UTC. The zero Calendar is not usable;
// use NewCalendar. A Calendar is safe for concurrent use: the rickar/cal
// calendar is only read after construction, and answers are memoised
// (rickar/cal recomputes every holiday's date on each question).
type Calendar struct {
	bc *cal.BusinessCalendar

	mu   sync.RWMutex
	memo map[int64]bool // Unix day → banking day
}

// memoCap bounds the memo (about 270 years of days).
const memoCap = 100_000

// NewCalendar returns the England and Wales banking calendar.
func NewCalendar() *Calendar {
	bc := cal.NewBusinessCalendar()
	bc.AddHoliday(gb.Holidays...)
	return &Calendar{bc: bc, memo: make(map[int64]bool)}
}

// ParseDate parses a YYYY-MM-DD date strictly (exactly 10 characters, a real
// calendar day) and returns it as a civil date.
func ParseDate(s string) (time.Time, error) {
	if len(s) != len(DateLayout) {
		return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	d, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD: %w", s, err)
	}
	return d, nil
}

// Today is the Bacs "today" at the instant now: the calendar date in
// London, where Bacs runs, as a civil date (midnight UTC). A collection or
// credit date before it is refused.
func Today(now time.Time) time.Time {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil { // cannot happen with time/tzdata linked in
		loc = time.UTC
	}
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// IsBankingDay reports whether d (a civil date) is a Bacs processing day:
// Monday to Friday and not an England and Wales bank holiday (observed date).
func (c *Calendar) IsBankingDay(d time.Time) bool {
	k := d.Unix() / 86400
	c.mu.RLock()
	open, ok := c.memo[k]
	c.mu.RUnlock()
	if ok {
		return open
	}
	open = c.bc.IsWorkday(d)
	c.mu.Lock()
	if len(c.memo) < memoCap {
		c.memo[k] = open
	}
	c.mu.Unlock()
	return open
}

// NextBankingDay returns d if it is a banking day, else the first banking day after it.
func (c *Calendar) NextBankingDay(d time.Time) time.Time {
	for !c.IsBankingDay(d) {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

// EarliestCollection is the first date that has LeadDays clear banking days
// between today and it. "Today" never counts, even when it is a banking day
// and even before the 22:00 submission cut-off: this is the stricter of the
// two documented readings ("3 clear banking days" on the payment page versus
// "3 working days counting today" in the release notes), so a date the
// sandbox accepts unchanged is accepted by either.
func (c *Calendar) EarliestCollection(today time.Time) time.Time {
	d := today
	for n := 0; n < LeadDays; {
		d = d.AddDate(0, 0, 1)
		if c.IsBankingDay(d) {
			n++
		}
	}
	return c.NextBankingDay(d.AddDate(0, 0, 1))
}

// ErrDateInPast is returned by Collectable for a date before today.
var ErrDateInPast = errors.New("date is in the past")

// Collectable applies SmarterPay's date rule to a requested collection or
// credit date: before today → ErrDateInPast (the API answers 400); a
// non-banking day or fewer than LeadDays clear banking days ahead → the next
// collectable banking day; otherwise the date itself. The bool reports
// whether the date was moved.
func (c *Calendar) Collectable(requested, today time.Time) (time.Time, bool, error) {
	if requested.Before(today) {
		return time.Time{}, false, fmt.Errorf("%s is before today %s: %w",
			requested.Format(DateLayout), today.Format(DateLayout), ErrDateInPast)
	}
	earliest := c.EarliestCollection(today)
	d := requested
	if d.Before(earliest) {
		d = earliest
	}
	d = c.NextBankingDay(d)
	return d, !d.Equal(requested), nil
}
