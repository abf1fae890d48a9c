package writers

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

// TestWriteFileAtomicThroughFIFO: a FIFO receives the bytes and stays a FIFO
// (the first wave renamed a regular file over it).
func TestWriteFileAtomicThroughFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(p)
		if err != nil {
			got <- err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	if err := WriteFileAtomic(p, writeString(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != `{"ok":true}` {
			t.Errorf("reader got %q", s)
		}
	case <-time.After(5 * time.Second):
		if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close() // release the reader
		}
		t.Error("the reader never got the bytes: the FIFO was not written")
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}
}

// TestWriteFileAtomicThroughSymlink: the link's target gets the new content
// and the link stays a link; a dangling link creates its target.
func TestWriteFileAtomicThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real", "report.json")
	os.MkdirAll(filepath.Dir(target), 0o755)
	os.WriteFile(target, []byte("old"), 0o600)
	link := filepath.Join(dir, "latest.json")
	if err := os.Symlink("real/report.json", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, writeString("new")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced by a %v", fi.Mode())
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("target holds %q", b)
	}
	dangling := filepath.Join(dir, "dangling.json")
	os.Symlink(filepath.Join(dir, "real", "new.json"), dangling)
	if err := WriteFileAtomic(dangling, writeString("created")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "real", "new.json")); string(b) != "created" {
		t.Errorf("dangling link target holds %q", b)
	}
	if fi, _ := os.Lstat(dangling); fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the dangling symlink was replaced")
	}
}

// TestWriteFileAtomicRefusesDirectory names the problem.
func TestWriteFileAtomicRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	err := WriteFileAtomic(dir, writeString("x"))
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("err = %v, want a directory refusal", err)
	}
	if fi, _ := os.Stat(dir); !fi.IsDir() {
		t.Fatal("the directory is gone")
	}
	tmp := filepath.Join(dir, ".x.tmp")
	os.WriteFile(tmp, []byte("x"), 0o600)
	if err := PlaceFile(tmp, dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("PlaceFile: err = %v", err)
	}
}

// TestWriteFileAtomicDevNull: writing to a character device (a null device
// made with mknod, as in the report, then /dev/null itself) leaves it a
// device. Needs root for mknod.
func TestWriteFileAtomicDevNull(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "null")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(mkdev(1, 3))); err != nil {
		t.Skip("mknod needs root:", err)
	}
	isDevice := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && fi.Mode()&fs.ModeCharDevice != 0
	}
	for _, p := range []string{dev, "/dev/null"} {
		if !isDevice(p) {
			t.Fatalf("%s is not a character device before the test", p)
		}
		if err := WriteFileAtomic(p, writeString(`{"summary":1}`)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !isDevice(p) {
			t.Fatalf("%s is no longer a character device", p)
		}
		tmp := filepath.Join(t.TempDir(), "export.parquet.tmp")
		os.WriteFile(tmp, []byte("PAR1"), 0o600)
		if err := PlaceFile(tmp, p); err != nil {
			t.Fatalf("PlaceFile %s: %v", p, err)
		}
		if !isDevice(p) {
			t.Fatalf("PlaceFile: %s is no longer a character device", p)
		}
		if _, err := os.Stat(tmp); err == nil {
			t.Errorf("PlaceFile left %s", tmp)
		}
	}
}

func mkdev(major, minor uint32) uint64 {
	return uint64(major)<<8 | uint64(minor)
}
