package writers

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes the file at path through write. What path names
// decides how:
//
//   - nothing, or a regular file: the data goes to a temporary file in the
//     same directory (so the rename never crosses file systems), which is
//     synced, closed and renamed over path only when write and the sync
//     succeed. On any error the temporary file is removed and path is left
//     untouched, so a crash never leaves half a report under the final name.
//     A new file is created 0644.
//   - a symbolic link: the link is followed and its target is written by
//     these rules; the link stays a link.
//   - a device, a FIFO or a socket: written in place, never replaced
//     (`--json /dev/null` writes to /dev/null; a FIFO gets the bytes).
//   - a directory: refused with an error saying so.
//
// It is the one way paybatch writes an output file.
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

// PlaceFile puts tmp, a complete file another program wrote (DuckDB's COPY),
// at path by the rules of WriteFileAtomic: renamed over a regular file or
// into an empty place, copied into a device or FIFO. tmp should be in path's
// directory so the rename is atomic; it is gone afterwards either way.
func PlaceFile(tmp, path string) error {
	defer os.Remove(tmp)
	final, special, err := outputTarget(path)
	if err != nil {
		return err
	}
	if special {
		src, err := os.Open(tmp)
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		defer src.Close()
		return WriteFileAtomic(final, func(w io.Writer) error { _, err := io.Copy(w, src); return err })
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(filepath.Dir(final))
	return nil
}

// outputTarget resolves where the bytes for path go: the end of any chain
// of symbolic links, and whether that is a special file (device, FIFO,
// socket) to be written in place. A directory is an error.
func outputTarget(path string) (final string, special bool, err error) {
	final = path
	for range 40 { // the kernel's own limit on link chains
		fi, err := os.Lstat(final)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return final, false, nil
		case err != nil:
			return "", false, fmt.Errorf("write %s: %w", path, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(final)
			if err != nil {
				return "", false, fmt.Errorf("write %s: %w", path, err)
			}
			if !filepath.IsAbs(link) {
				link = filepath.Join(filepath.Dir(final), link)
			}
			final = link
		case fi.IsDir():
			return "", false, fmt.Errorf("write %s: it is a directory; give a file name", path)
		case fi.Mode().IsRegular():
			return final, false, nil
		default:
			return final, true, nil
		}
	}
	return "", false, fmt.Errorf("write %s: too many levels of symbolic links", path)
}

// atomicFile is an output being written: a temporary file next to its
// final name, or the special file itself when direct.
type atomicFile struct {
	path   string // as the caller named it, for messages
	final  string // where the data lands (a symbolic link's target)
	f      *os.File
	direct bool // f is the device or FIFO itself
	w      *blockWriter
}

func createAtomic(path string) (*atomicFile, error) {
	final, special, err := outputTarget(path)
	if err != nil {
		return nil, err
	}
	a := &atomicFile{path: path, final: final, direct: special}
	if special {
		a.f, err = os.OpenFile(final, os.O_WRONLY, 0)
	} else {
		dir, base := filepath.Split(final)
		if dir == "" {
			dir = "."
		}
		a.f, err = os.CreateTemp(dir, "."+base+".tmp-*")
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	a.w = newBlockWriter(a.f, !special)
	return a, nil
}

// commit flushes, syncs and renames the file into place (or, for a special
// file, flushes and closes it); on failure the temporary file is removed.
func (a *atomicFile) commit() error {
	err := a.w.Flush()
	if a.direct {
		if cerr := a.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", a.path, err)
		}
		return nil
	}
	if err == nil {
		err = a.f.Chmod(0o644)
	}
	if err == nil {
		err = a.f.Sync()
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(a.f.Name(), a.final)
	}
	if err != nil {
		_ = os.Remove(a.f.Name())
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	syncDir(filepath.Dir(a.final))
	return nil
}

// abort discards the temporary file (a special file is just closed).
func (a *atomicFile) abort() {
	a.w.stop()
	_ = a.f.Close()
	if !a.direct {
		_ = os.Remove(a.f.Name())
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
