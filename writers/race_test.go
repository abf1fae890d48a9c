//go:build race

package writers

// raceEnabled: the LibreOffice checks run in the plain pass only (CI runs
// the suite twice; LibreOffice adds a minute to each).
const raceEnabled = true
