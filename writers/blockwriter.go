package writers

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// blockWriter is the buffer between an output file's writer and the file
// (atomicFile.w). On a regular file it writes the bytes in whole, aligned
// blocks with direct I/O (O_DIRECT, Linux: directio_linux.go) — straight
// from the buffer to the disk, not through the kernel's page cache — and
// the last part block buffered, at flush.
//
// Why: an output file is synced before it is renamed into place
// (atomicFile.commit), so its bytes go to the disk at once anyway; through
// the page cache they are first copied into pages the kernel must find and
// charge, then written back by the sync. On this project's VM a page the
// guest has not used lately costs a fault in the hypervisor, so writing
// the report's files into new pages was the dearest part of it: matched.csv
// (88 MB at 1M ids) cost 0.16–0.28 cpu-s written and synced through the
// page cache against 0.02 with direct I/O (0.06 s wall); where the pages
// were just freed (the last run's outputs deleted a moment before) the
// page cache costs ≈ 0.03 and direct I/O gains nothing (#19, BENCHMARKS.md
// "Full report", session 9). A file system that refuses direct I/O (the
// flag cannot be set, or a block write says EINVAL) is written through the
// page cache as before; so is a special file (a device, a FIFO).
type blockWriter struct {
	f      *os.File
	buf    []byte // len: bytes waiting; cap: a whole number of blocks
	direct bool   // f has O_DIRECT: writes are whole blocks from buf
	err    error  // the first write error; every later write returns it
	// A direct write waits for the disk: a full buffer is written by a
	// goroutine of its own while the caller fills the other buffer
	// (writeBehind); inFlight is that write's outcome, nil when none is.
	inFlight chan flight
	spare    []byte
}

// flight is a buffer written behind, and how its write went (n bytes of
// it written).
type flight struct {
	b   []byte
	n   int
	err error
}

const (
	// directBlock is the size and alignment of a direct write: the
	// largest logical block size in common use (512-byte disks take it
	// too); a device wanting more says EINVAL and the file goes buffered.
	directBlock = 4096
	// blockBuffer is the buffer of a regular file: direct writes of 1 MB
	// cost 0.016 cpu-s per 88 MB, of 256 KB 0.023–0.046 (this VM).
	blockBuffer = 1 << 20
	// plainBuffer is the buffer of a special file (written in place).
	plainBuffer = 256 << 10
)

// newBlockWriter buffers writes to f, with direct I/O when direct asks for
// it and f's file system takes it.
func newBlockWriter(f *os.File, direct bool) *blockWriter {
	if !direct {
		return &blockWriter{f: f, buf: make([]byte, 0, plainBuffer)}
	}
	w := &blockWriter{f: f, buf: alignedBuffer(blockBuffer)}
	w.direct = setDirectIO(f, true)
	return w
}

// alignedBuffer is an empty slice of capacity n whose first byte lies on a
// directBlock boundary in memory (direct I/O needs it).
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directBlock)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % directBlock); r != 0 {
		off = directBlock - r
	}
	return b[off : off : off+n]
}

func (w *blockWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == cap(w.buf) {
			if err := w.writeOut(false); err != nil {
				return n, err
			}
		}
		c := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+c]
		n += c
		p = p[c:]
	}
	return n, nil
}

// Flush writes everything buffered: the whole blocks directly, then the
// part block through the page cache (direct I/O is turned off for it, so
// the file may be written on after, buffered).
func (w *blockWriter) Flush() error {
	if err := w.wait(); err != nil {
		return err
	}
	return w.writeOut(true)
}

// writeOut writes the buffer's whole blocks (all of it when not direct),
// keeping the rest at its start; with last, the rest too. A full buffer
// written directly is written behind (writeBehind).
func (w *blockWriter) writeOut(last bool) error {
	if !last && w.direct && len(w.buf) == cap(w.buf) {
		return w.writeBehind()
	}
	if err := w.wait(); err != nil {
		return err
	}
	n := len(w.buf)
	if w.direct {
		n -= n % directBlock
	}
	if n > 0 {
		if err := w.write(w.buf[:n]); err != nil {
			w.err = err
			return err
		}
		w.buf = w.buf[:copy(w.buf, w.buf[n:])]
	}
	if last && len(w.buf) > 0 {
		if w.direct {
			setDirectIO(w.f, false)
			w.direct = false
		}
		if err := w.write(w.buf); err != nil {
			w.err = err
			return err
		}
		w.buf = w.buf[:0]
	}
	return nil
}

// writeBehind hands the full buffer to a goroutine that writes it, once
// the write before it has ended, and goes on with the other buffer.
func (w *blockWriter) writeBehind() error {
	if err := w.wait(); err != nil {
		return err
	}
	if w.spare == nil {
		w.spare = alignedBuffer(cap(w.buf))
	}
	b := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.inFlight = make(chan flight, 1)
	go func(f *os.File, done chan<- flight) {
		n, err := f.Write(b)
		done <- flight{b, n, err}
	}(w.f, w.inFlight)
	return nil
}

// wait waits for the write in flight, if any; a direct write refused
// (EINVAL) is written again buffered (write).
func (w *blockWriter) wait() error {
	if w.err != nil {
		return w.err
	}
	if w.inFlight == nil {
		return nil
	}
	fl := <-w.inFlight
	w.inFlight = nil
	err := fl.err
	if err != nil && w.direct && errors.Is(err, syscall.EINVAL) {
		err = w.buffered(fl.b[fl.n:])
	}
	if err != nil {
		w.err = err
		return err
	}
	w.spare = fl.b[:0]
	return nil
}

// write writes b to the file; a direct write the file system refuses
// (EINVAL: an alignment it does not take) is written again buffered, and
// so is the rest of the file.
func (w *blockWriter) write(b []byte) error {
	n, err := w.f.Write(b)
	if err != nil && w.direct && errors.Is(err, syscall.EINVAL) {
		return w.buffered(b[n:]) // a refused write moved the offset by n only
	}
	return err
}

// buffered turns direct I/O off for the rest of the file and writes b.
func (w *blockWriter) buffered(b []byte) error {
	setDirectIO(w.f, false)
	w.direct = false
	_, err := w.f.Write(b)
	return err
}

// stop waits for a write in flight (before the file is closed unfinished).
func (w *blockWriter) stop() {
	if w.inFlight != nil {
		<-w.inFlight
		w.inFlight = nil
	}
}
