//go:build race

package readers

// raceEnabled: under the detector (CI's second pass, ≈ 15× slower here)
// the generated-file rounds that only add variety of input run fewer
// files; the plain pass runs them all.
const raceEnabled = true
