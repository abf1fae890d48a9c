package reconcile

import (
	"fmt"
	"strconv"
	"strings"
)

// duckdbShare is the part of Options.MemoryLimit given to DuckDB's
// memory_limit. DuckDB's limit covers its buffer manager, not every
// allocation (readers' buffers, the Go side): measured at 10M rows per side
// with memory_limit=1GB, the process peaked at 1.27 GB RSS, with 75% of 1GB
// at 1.02 GB, and with 65% still 0.3–1.4% over. Giving DuckDB 55% keeps the
// whole reconcile within the configured limit.
const duckdbShare = 0.55

// parseSize reads a size such as "512MB", "2GB", "1.5GiB" or "1000000"
// (bytes) into bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	// a size, not money: a float is fine here
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("reconcile: memory limit %q: want a size such as 512MB or 4GB", s)
	}
	b := int64(v * mult)
	if b < 64<<20 {
		return 0, fmt.Errorf("reconcile: memory limit %q is below 64MB", s)
	}
	return b, nil
}
