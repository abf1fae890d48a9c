package writers

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// The digit helpers write what strconv writes: every power of ten and its
// neighbours, the extremes, and random values of every length.
func TestAppendIntAsStrconv(t *testing.T) {
	var ns []int64
	for p := int64(1); ; p *= 10 {
		ns = append(ns, p-1, p, p+1, -(p - 1), -p, -(p + 1))
		if p > math.MaxInt64/10 {
			break
		}
	}
	ns = append(ns, 0, math.MaxInt64, math.MinInt64, math.MaxInt64-1, math.MinInt64+1)
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		ns = append(ns, r.Int64()>>r.IntN(64), -(r.Int64() >> r.IntN(64)))
	}
	for _, n := range ns {
		if got, want := string(appendInt([]byte("x"), n)), strconv.AppendInt([]byte("x"), n, 10); got != string(want) {
			t.Fatalf("appendInt(%d) = %q, want %q", n, got, want)
		}
		u := uint64(n)
		if got, want := string(appendUint(nil, u)), strconv.FormatUint(u, 10); got != want {
			t.Fatalf("appendUint(%d) = %q, want %q", u, got, want)
		}
	}
	for _, u := range []uint64{math.MaxUint64, math.MaxUint64 - 1, 1e19, 1e19 - 1} {
		if got, want := string(appendUint(nil, u)), strconv.FormatUint(u, 10); got != want {
			t.Fatalf("appendUint(%d) = %q, want %q", u, got, want)
		}
	}
}

func TestAppendDigits(t *testing.T) {
	for _, c := range []struct {
		u    uint64
		n    int
		want string
	}{{7, 3, "007"}, {0, 2, "00"}, {0, 1, "0"}, {5, 1, "5"}, {45, 2, "45"}, {1234, 4, "1234"}, {5, 4, "0005"}, {50, 3, "050"}, {0, 0, ""}} {
		if got := string(appendDigits([]byte("-"), c.u, c.n)); got != "-"+c.want {
			t.Errorf("appendDigits(%d, %d) = %q, want %q", c.u, c.n, got, "-"+c.want)
		}
	}
}

// appendFixed writes what paybatch.Money.String writes, appendDecimal the
// same without trailing zeros (their reference here: the strconv form
// they had).
func TestAppendFixedAsStrconv(t *testing.T) {
	ref := func(minor int64, exp int) string {
		u := uint64(minor)
		s := ""
		if minor < 0 {
			s, u = "-", -u
		}
		if exp <= 0 {
			return s + strconv.FormatUint(u, 10)
		}
		pow := uint64(1)
		for range exp {
			pow *= 10
		}
		f := strconv.FormatUint(u%pow, 10)
		for len(f) < exp {
			f = "0" + f
		}
		return s + strconv.FormatUint(u/pow, 10) + "." + f
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 300_000 {
		minor := r.Int64() >> r.IntN(64)
		if i%2 == 1 {
			minor = -minor
		}
		switch i {
		case 0:
			minor = math.MinInt64
		case 1:
			minor = math.MaxInt64
		}
		for exp := range 5 {
			if got, want := string(appendFixed(nil, minor, exp)), ref(minor, exp); got != want {
				t.Fatalf("appendFixed(%d, %d) = %q, want %q", minor, exp, got, want)
			}
			want := ref(minor, exp)
			if strings.Contains(want, ".") {
				want = strings.TrimRight(strings.TrimRight(want, "0"), ".")
			}
			if got := string(appendDecimal(nil, minor, exp)); got != want {
				t.Fatalf("appendDecimal(%d, %d) = %q, want %q", minor, exp, got, want)
			}
		}
	}
}
