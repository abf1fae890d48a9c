package writers

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes a file through write and moves it into place only
// when write and the flush to disk succeed: the data goes to a temporary file
// in the same directory (so the final rename never crosses file systems),
// which is synced, closed and renamed over path. On any error the temporary
// file is removed and path is left untouched, so a crash never leaves a
// half-written report under the final name. The file is created 0644.
func WriteFileAtomic(path string, write func(w io.Writer) error) error {
	af, err := createAtomic(path)
	if err != nil {
		return err
	}
	if err := write(af.w); err != nil {
		af.abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return af.commit()
}

// atomicFile is a file being written under a temporary name next to path.
type atomicFile struct {
	path string
	tmp  *os.File
	w    *bufio.Writer
}

func createAtomic(path string) (*atomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &atomicFile{path: path, tmp: tmp, w: bufio.NewWriterSize(tmp, 256<<10)}, nil
}

// commit flushes, syncs and renames the file into place; on failure the
// temporary file is removed.
func (a *atomicFile) commit() error {
	err := a.w.Flush()
	if err == nil {
		err = a.tmp.Chmod(0o644)
	}
	if err == nil {
		err = a.tmp.Sync()
	}
	if cerr := a.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.tmp.Name(), a.path)
	}
	if err != nil {
		_ = os.Remove(a.tmp.Name())
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	syncDir(filepath.Dir(a.path))
	return nil
}

// abort discards the temporary file.
func (a *atomicFile) abort() {
	_ = a.tmp.Close()
	_ = os.Remove(a.tmp.Name())
}

// syncDir makes the rename durable where the platform allows it; failure is
// not an error (some file systems refuse to fsync a directory).
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
