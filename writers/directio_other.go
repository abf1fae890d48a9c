//go:build !linux

package writers

import "os"

// setDirectIO: direct I/O is used on Linux only (directio_linux.go);
// elsewhere every output file is written through the page cache.
func setDirectIO(*os.File, bool) bool { return false }
