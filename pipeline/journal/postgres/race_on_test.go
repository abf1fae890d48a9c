//go:build race

package postgres_test

// raceEnabled: the race detector slows the processes unevenly, so rate
// assertions are not meaningful under it (exactly-once still is).
const raceEnabled = true
