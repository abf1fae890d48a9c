//go:build race

package pipeline_test

// raceEnabled: the race detector slows the in-process sandbox and client
// unevenly, so wall-clock pacing assertions are not meaningful under it.
const raceEnabled = true
