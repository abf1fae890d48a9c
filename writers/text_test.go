package writers

import "testing"

func TestNeutralise(t *testing.T) {
	for _, s := range injectionCorpus {
		if !NeedsNeutralising(s) || NeutraliseCSV(s) != "'"+s {
			t.Errorf("%q not neutralised", s)
		}
	}
	for _, s := range []string{"", "ORD-1", "1=1", "a@b.example", " done"} {
		if NeedsNeutralising(s) || NeutraliseCSV(s) != s {
			t.Errorf("%q changed", s)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"10MiB", "1KiB", "1024", "5MB", "0", "-1", "1e9", "9999999999999999999MiB", "9999999999999MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n <= 0 {
			t.Fatalf("parseSize(%q) = %d without error", s, n)
		}
	})
}
