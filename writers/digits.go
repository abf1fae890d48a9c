package writers

import (
	"math/bits"
	"slices"
)

// The report's numbers (amounts, row numbers) are written by the helpers
// below rather than strconv's AppendInt/AppendUint: those format into a
// scratch array a byte or two at a time and then copy it into the
// destination, and that copy reads back, in wide loads, bytes stored a
// moment before in narrow stores, which the CPU cannot forward from its
// store buffer — it waits for them. pprof of the 1M drain put ≈ 0.08
// cpu-s per drain in that copy (runtime.memmove under strconv.AppendUint,
// most of it for the amounts and row numbers of the sheet XML). Here the
// digits are stored straight into the destination, back to front.

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// pow10 are the powers of ten a uint64 holds.
var pow10 = [20]uint64{
	1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

// decimalLen is the number of decimal digits of u (1 for 0).
func decimalLen(u uint64) int {
	if u < 10 {
		return 1
	}
	n := bits.Len64(u) * 1233 >> 12 // ⌊bits × log10 2⌋: 10^n ≤ 2^bits
	if u >= pow10[n] {
		n++
	}
	return n
}

// appendDigits appends the last n decimal digits of u to b, with leading
// zeros: appendDigits(b, 7, 3) appends "007".
func appendDigits(b []byte, u uint64, n int) []byte {
	l := len(b)
	b = slices.Grow(b, n)[:l+n]
	d := b[l : l+n : l+n]
	i := n
	for i >= 2 {
		q := u / 100
		r := (u - q*100) * 2
		d[i-1], d[i-2] = digitPairs[r+1], digitPairs[r]
		u = q
		i -= 2
	}
	if i == 1 {
		d[0] = byte('0' + u%10)
	}
	return b
}

// appendUint appends u in decimal, as strconv.AppendUint(b, u, 10).
func appendUint(b []byte, u uint64) []byte { return appendDigits(b, u, decimalLen(u)) }

// appendInt appends n in decimal, as strconv.AppendInt(b, n, 10).
func appendInt(b []byte, n int64) []byte {
	u := uint64(n)
	if n < 0 {
		b = append(b, '-')
		u = -u
	}
	return appendUint(b, u)
}
