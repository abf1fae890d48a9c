package reconcile

import (
	"context"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"2GB", 2e9, true}, {"512MB", 512e6, true}, {"1GiB", 1 << 30, true}, {" 1.5 gb ", 1.5e9, true},
		{"100000000", 1e8, true}, {"", 0, false}, {"lots", 0, false}, {"-1GB", 0, false}, {"1MB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

// DuckDB gets 55% of the configured limit.
func TestMemoryLimitApplied(t *testing.T) {
	r, err := Open(context.Background(), Options{MemoryLimit: "1GB", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got string
	if err := r.db.QueryRow(`SELECT current_setting('memory_limit')`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "524") { // 550MB = 524.5 MiB
		t.Fatalf("memory_limit = %q, want 550MB", got)
	}
	if _, err := Open(context.Background(), Options{MemoryLimit: "lots"}); err == nil {
		t.Fatal("bad memory limit accepted")
	}
}
