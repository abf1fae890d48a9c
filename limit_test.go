package paybatch

import (
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limit
		err  bool
	}{
		{"50/1s", Limit{50, time.Second}, false},
		{"1000/60s", Limit{1000, time.Minute}, false},
		{"100/s", Limit{100, time.Second}, false},
		{"10/m", Limit{10, time.Minute}, false},
		{" 5 / 2s ", Limit{5, 2 * time.Second}, false},
		{"50", Limit{}, true},
		{"0/1s", Limit{}, true},
		{"-1/1s", Limit{}, true},
		{"x/1s", Limit{}, true},
		{"5/0s", Limit{}, true},
		{"5/fortnight", Limit{}, true},
		{"100/500ms", Limit{100, 500 * time.Millisecond}, false},
		{"5/-1s", Limit{}, true},
		{"5/abc", Limit{}, true},
	} {
		got, err := ParseLimit(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLimit(%q) = %v, %v", tc.in, got, err)
		}
	}
	if got := (Limit{100, time.Second}).Min(Limit{50, time.Second}); got.N != 50 {
		t.Errorf("Min = %v", got)
	}
	if got := (Limit{1000, time.Minute}).Min(Limit{}); got.N != 1000 {
		t.Errorf("Min with zero = %v", got)
	}
}

// FuzzParseLimit: any accepted rate is positive and survives a round trip
// through its String form; nothing panics.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"50/1s", "1000/60s", "100/s", "10/m", "0/1s", "x", "5/", "/1s", "9999999999999999999/1s", "1/1ns", "3/-1s", "2/1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		if l.N <= 0 || l.Per <= 0 || l.IsZero() || l.PerSecond() <= 0 {
			t.Fatalf("ParseLimit(%q) = %+v", s, l)
		}
		back, err := ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("round trip %q → %q → %+v, %v", s, l.String(), back, err)
		}
	})
}
