package writers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// testBytes is n bytes of lines, so that a wrong block is visible.
func testBytes(n int) []byte {
	b := make([]byte, 0, n+32)
	for i := 0; len(b) < n; i++ {
		b = append(b, "line "...)
		b = append(b, byte('0'+i%10), byte('a'+i%26), '\n')
	}
	return b[:n]
}

// writeInPieces writes data to w in pieces of random sizes (up to max).
func writeInPieces(t *testing.T, w io.Writer, data []byte, rng *rand.Rand, max int) {
	t.Helper()
	for len(data) > 0 {
		k := min(len(data), 1+rng.IntN(max))
		if n, err := w.Write(data[:k]); err != nil || n != k {
			t.Fatalf("Write = %d, %v; want %d", n, err, k)
		}
		data = data[k:]
	}
}

// TestBlockWriterBytes: whatever the sizes and the pieces they are written
// in, the file holds exactly the bytes written, direct I/O or not — around
// the block and buffer boundaries too.
func TestBlockWriterBytes(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(19, 9))
	sizes := []int{0, 1, directBlock - 1, directBlock, directBlock + 1, blockBuffer - 1, blockBuffer,
		blockBuffer + 1, blockBuffer + directBlock, 3*blockBuffer + 123}
	for _, size := range sizes {
		data := testBytes(size)
		for _, pieces := range []int{1 << 30, 100, 5000, blockBuffer + 7} {
			path := filepath.Join(dir, "out.csv")
			if err := WriteFileAtomic(path, func(w io.Writer) error {
				writeInPieces(t, w, data, rng, pieces)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			fileHolds(t, path, data, fmt.Sprintf("size %d, pieces ≤ %d: ", size, pieces))
		}
	}
}

// fileHolds fails the test (what: the case) unless the file at path holds
// exactly want.
func fileHolds(t *testing.T, path string, want []byte, what string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%sfile differs (%d bytes, want %d)", what, len(got), len(want))
	}
}

// directFile is a new file in dir written by a direct blockWriter; the
// test is skipped where dir's file system does not take direct I/O.
func directFile(t *testing.T, dir string) (*os.File, *blockWriter) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "direct.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w := newBlockWriter(f, true)
	if !w.direct {
		t.Skipf("%s does not take direct I/O here", dir)
	}
	if len(w.buf) != 0 || cap(w.buf)%directBlock != 0 {
		t.Fatalf("buffer len %d cap %d", len(w.buf), cap(w.buf))
	}
	return f, w
}

// TestBlockWriterDirect: a file system that takes direct I/O gets whole
// blocks directly, the last part block buffered at Flush; writes after
// Flush append (buffered).
func TestBlockWriterDirect(t *testing.T) {
	f, w := directFile(t, t.TempDir())
	data := testBytes(2*blockBuffer + directBlock + 10)
	writeInPieces(t, w, data[:blockBuffer+3], rand.New(rand.NewPCG(1, 2)), 999)
	if !w.direct {
		t.Fatal("direct I/O turned off by whole-block writes")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.direct {
		t.Error("direct I/O still on after the part block")
	}
	writeInPieces(t, w, data[blockBuffer+3:], rand.New(rand.NewPCG(3, 4)), 70_000)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fileHolds(t, f.Name(), data, "")
}

// TestBlockWriterRefusedDirect: a direct write the kernel refuses (EINVAL;
// here a buffer off the block alignment, as a device wanting larger blocks
// would refuse) is written again buffered, and so is the rest.
func TestBlockWriterRefusedDirect(t *testing.T) {
	f, w := directFile(t, t.TempDir())
	w.buf = alignedBuffer(blockBuffer + directBlock)[1 : 1 : blockBuffer+1] // one byte off the alignment
	data := testBytes(3 * blockBuffer)
	writeInPieces(t, w, data, rand.New(rand.NewPCG(5, 6)), 4096)
	refused := !w.direct
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fileHolds(t, f.Name(), data, "")
	if !refused { // tmpfs takes any direct write
		t.Skip("this file system took a misaligned direct write: the fallback was not exercised")
	}
}

// TestBlockWriterKeepsError: a failed write (also one written behind) is
// reported, and every later write and Flush fails too (a file with a hole
// is never committed).
func TestBlockWriterKeepsError(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	w := newBlockWriter(f, true)
	f.Close()
	// a buffer written behind fails when the next one is handed over
	if _, err := w.Write(testBytes(3*blockBuffer + 1)); err == nil {
		t.Fatal("no error writing to a closed file")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("a write after a failure succeeded")
	}
	if err := w.Flush(); err == nil {
		t.Error("Flush after a failure succeeded")
	}
}

// TestBlockWriterAbortInFlight: an output that fails while a buffer is
// being written behind leaves nothing (the write is waited for before the
// temporary file is removed).
func TestBlockWriterAbortInFlight(t *testing.T) {
	dir := t.TempDir()
	boom := errors.New("stop")
	err := WriteFileAtomic(filepath.Join(dir, "big.csv"), func(w io.Writer) error {
		if _, err := w.Write(testBytes(2*blockBuffer + 5)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
