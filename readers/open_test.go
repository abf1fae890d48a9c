package readers

import "testing"

// openPath opens the batch file at path as the CLI does (OpenInput's
// checks, then OpenReader); the file is closed when tb's test ends.
func openPath(tb testing.TB, path string, opts Options) (*Batch, error) {
	tb.Helper()
	in, err := OpenInput(path, opts.MaxFileSize, nil)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { in.Close() })
	return OpenReader(in.R, in.Size, in.Name, opts)
}
