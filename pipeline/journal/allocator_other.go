//go:build !(linux && cgo && amd64)

package journal

import "time"

// DuckDB does not use jemalloc here: nothing to tune.
func allocatorDecay() (time.Duration, error) { return decayUnknown, nil }

func setAllocatorDecay(time.Duration) error { return nil }
