package paybatch

import (
	"embed"
	"io/fs"
)

//go:embed testdata/demo/refunds.csv testdata/demo/ledger.csv testdata/demo/fixtures.json testdata/demo/README.md
var demoFiles embed.FS

// DemoData returns the bundled demo batch, ledger and sandbox fixtures
// (refunds.csv, ledger.csv, fixtures.json, README.md) that `paybatch demo`
// runs on. The files are read-only.
func DemoData() fs.FS {
	sub, err := fs.Sub(demoFiles, "testdata/demo")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}
