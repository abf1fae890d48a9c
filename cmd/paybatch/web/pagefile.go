package web

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// A page file holds the records of one list of a batch (the preview of the
// valid rows, the rejects) written once at upload, and read a page at a
// time: each record is a count of fields then each field length-prefixed
// (uvarints), and <path>.idx holds the byte offset of every pageSize-th
// record (little-endian uint64s). Page n of a million-row batch is one seek
// and pageSize records, whatever n is.
//
// Records are built in place in a buffer; a full buffer goes to a
// goroutine of the writer's own that writes it (the write system calls of
// a million-row preview, ≈ 45 MB, are then off the path of the upload's
// rows). close or abort ends that goroutine.
type pageWriter struct {
	path string
	f    *os.File
	off  int64
	n    int
	idx  []byte
	buf  []byte // records not yet handed to the writing goroutine
	rec  int    // where the record being built starts in buf
	full chan []byte
	free chan []byte
	done chan error            // the writing goroutine's first error, once it ends
	fail atomic.Pointer[error] // the first write error, as soon as it happens
}

// pageWriteBuf is how much of a page file is written at once.
const pageWriteBuf = 256 << 10

func createPageFile(path string) (*pageWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := &pageWriter{path: path, f: f, buf: make([]byte, 0, pageWriteBuf+4<<10),
		full: make(chan []byte, 2), free: make(chan []byte, 3), done: make(chan error, 1)}
	go w.write()
	return w, nil
}

// write writes the buffers handed over, in order, until full is closed;
// after an error it only recycles them.
func (w *pageWriter) write() {
	var err error
	for b := range w.full {
		if err == nil {
			if _, err = w.f.Write(b); err != nil {
				w.fail.Store(&err)
			}
		}
		select {
		case w.free <- b[:0]:
		default:
		}
	}
	w.done <- err
}

// add appends one record.
func (w *pageWriter) add(fields ...string) error {
	w.start(len(fields))
	for _, f := range fields {
		w.field(f)
	}
	return w.finish()
}

// start begins a record of n fields, each then given by field, int or
// date, and the record written by finish.
func (w *pageWriter) start(n int) {
	if w.n%pageSize == 0 {
		w.idx = binary.LittleEndian.AppendUint64(w.idx, uint64(w.off))
	}
	w.rec = len(w.buf)
	w.buf = binary.AppendUvarint(w.buf, uint64(n))
}

func (w *pageWriter) field(f string) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(f)))
	w.buf = append(w.buf, f...)
}

// int is the field strconv.FormatInt(i, 10).
func (w *pageWriter) int(i int64) {
	var d [20]byte
	w.bytes(strconv.AppendInt(d[:0], i, 10))
}

// date is the field t.Format(time.DateOnly), or "" for the zero time.
func (w *pageWriter) date(t time.Time) {
	var d [16]byte
	if t.IsZero() {
		w.bytes(nil)
		return
	}
	w.bytes(t.AppendFormat(d[:0], time.DateOnly))
}

func (w *pageWriter) bytes(b []byte) {
	w.buf = binary.AppendUvarint(w.buf, uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// finish ends the record; a full buffer is handed to the writing
// goroutine. An error is its first write error (the rest is not written).
func (w *pageWriter) finish() error {
	w.off += int64(len(w.buf) - w.rec)
	w.n++
	if len(w.buf) >= pageWriteBuf {
		w.handOver()
	}
	if err := w.fail.Load(); err != nil {
		return *err
	}
	return nil
}

func (w *pageWriter) handOver() {
	w.full <- w.buf
	select {
	case w.buf = <-w.free:
	default:
		w.buf = make([]byte, 0, pageWriteBuf+4<<10)
	}
	w.rec = 0
}

// stop hands over what is left and waits for the writing goroutine: its
// error, if any.
func (w *pageWriter) stop() error {
	if len(w.buf) > 0 {
		w.handOver()
	}
	close(w.full)
	return <-w.done
}

// close finishes the file and writes its index.
func (w *pageWriter) close() error {
	err := w.stop()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.WriteFile(w.path+".idx", w.idx, 0o640)
	}
	return err
}

// abort removes a file that will not be finished.
func (w *pageWriter) abort() {
	w.buf = w.buf[:0]
	w.stop()
	w.f.Close()
	os.Remove(w.path)
	os.Remove(w.path + ".idx")
}

// readPage returns the records of page p (1-based) of the page file at
// path; none when the file or the page does not exist.
func readPage(path string, p int) ([][]string, error) {
	if p < 1 {
		return nil, nil
	}
	idx, err := os.Open(path + ".idx")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var off [8]byte
	_, err = idx.ReadAt(off[:], int64(p-1)*8)
	idx.Close()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(io.NewSectionReader(f, int64(binary.LittleEndian.Uint64(off[:])), 1<<62))
	var out [][]string
	for len(out) < pageSize {
		rec, err := readRecord(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// eachRecord streams every record of the page file at path (none when it
// does not exist) until fn returns false.
func eachRecord(path string, fn func(rec []string) bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	for {
		rec, err := readRecord(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !fn(rec) {
			return nil
		}
	}
}

func readRecord(br *bufio.Reader) ([]string, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err // io.EOF at a record boundary: the end
	}
	if n > 64 {
		return nil, errors.New("damaged page file (a record of too many fields)")
	}
	rec := make([]string, n)
	for i := range rec {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, unexpected(err)
		}
		if l > 1<<24 {
			return nil, errors.New("damaged page file (a field too long)")
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, unexpected(err)
		}
		rec[i] = string(b)
	}
	return rec, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
