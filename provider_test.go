package paybatch

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExcerpt(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		n          int
		want       string
	}{
		{"short", "  Bad Gateway \n", 200, "Bad Gateway"},
		{"cut", "abcdef", 3, "abc"},
		{"cut inside a character", "café au lait", 4, "caf"}, // é is 2 bytes at 3–4
		{"cut after a character", "café au lait", 5, "café"},
		{"cut inside a 4-byte character", "ok 😀", 5, "ok"},
		{"not UTF-8", "<p>caf\xe9 \xff\xfe</p>", 200, "<p>caf\uFFFD \uFFFD</p>"},
		{"binary", "\x00\x01\xc3", 200, "\x00\x01\uFFFD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Excerpt([]byte(tc.body), tc.n); got != tc.want {
				t.Fatalf("Excerpt(%q, %d) = %q, want %q", tc.body, tc.n, got, tc.want)
			}
		})
	}
}

// FuzzExcerpt: an excerpt is UTF-8, and of a body that is, a prefix of
// at most n bytes.
func FuzzExcerpt(f *testing.F) {
	f.Add([]byte("café au lait"), 4)
	f.Add([]byte("\xff\xfe\xc3"), 2)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := Excerpt(b, n)
		if !utf8.ValidString(got) {
			t.Fatalf("Excerpt(%q, %d) = %q: not UTF-8", b, n, got)
		}
		if utf8.Valid(b) && (len(got) > n || !strings.Contains(string(b), got)) {
			t.Fatalf("Excerpt(%q, %d) = %q: not a part of the body of at most n bytes", b, n, got)
		}
	})
}
