//go:build race

package journal

// raceEnabled: tests whose point is the size of the run (a memory limit)
// run in the plain pass only; under the detector they would only slow CI
// (the same code is raced at small sizes by the other tests).
const raceEnabled = true
