package reconcile

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Row numbers of a CSV are what the user sees: the line where the record
// starts, the header line 1 (paybatch.Source.Row), as readers numbers them.
// DuckDB's CSV reader numbers records instead (row_number() over the reader,
// the rowids of a copy in file order: the record's place + 2), which is the
// same only while every record is one line: a blank line is skipped and a
// quoted field holding a line break counts once. So wherever a CSV DuckDB
// reads is about to be numbered (insertLines, the rows pass) the file is
// scanned once (recordsAreLines) and, when some record is not one line of
// its own, read in Go instead (stageCSV numbers by line). A file readers
// refuses but DuckDB reads (none is known: DuckDB's reader is strict) would
// stay DuckDB's, numbered by record as before. With Options.Rows the scan
// starts as the file is loaded (startLineScan) and Run takes its answer.
// Reconcile --json on the fast road numbers nothing and scans nothing.

// numberByLines takes the scan of every CSV DuckDB reads and has not been
// scanned (the one started at its load, or one now, side by side: at 1M
// lines ≈ 20–50 ms of CPU per file, the read included), and reads in Go
// those whose records are not one line each.
func (r *Reconciler) numberByLines(ctx context.Context, conn *sql.Conn) error {
	var todo []*source
	for _, s := range r.sources {
		if s.needsLineScan() {
			todo = append(todo, s)
		}
	}
	oks := make([]bool, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, s := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			oks[i], errs[i] = s.recordsAreLines(ctx)
		}()
	}
	wg.Wait()
	for i, s := range todo {
		if errs[i] != nil {
			return fmt.Errorf("reconcile: %s: %w", s.path, errs[i])
		}
		if err := s.scanned(ctx, conn, oks[i]); err != nil {
			return err
		}
	}
	return nil
}

// numberByLines is Reconciler.numberByLines for s alone.
func (s *source) numberByLines(ctx context.Context, conn *sql.Conn) error {
	if !s.needsLineScan() {
		return nil
	}
	ok, err := s.recordsAreLines(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %s: %w", s.path, err)
	}
	return s.scanned(ctx, conn, ok)
}

// needsLineScan: s is a CSV DuckDB reads, not yet copied as text
// (insertLines) nor scanned by recordsAreLines.
func (s *source) needsLineScan() bool {
	return s.duckCSV() && !s.copied && !s.linesScanned
}

// scanned notes recordsAreLines' answer ok for s and, when its records
// are not one line each, reads s in Go (stageCSV).
func (s *source) scanned(ctx context.Context, conn *sql.Conn, ok bool) error {
	s.linesScanned = true
	if ok {
		return nil
	}
	if err := stageCSV(ctx, conn, s); err != nil {
		if ctx.Err() != nil {
			return err
		}
		// readers refused what DuckDB reads: the file stays DuckDB's
		// (src_<n> is untouched: stageCSV replaces it last)
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`DROP TABLE IF EXISTS stage_%d`, s.n)); derr != nil {
			return fmt.Errorf("reconcile: %s: %w", s.path, derr)
		}
	}
	return nil
}

// recordsAreLines reports whether every record of the CSV at path is one
// line: no blank line (LF or CRLF) anywhere, and no quoted field holding a
// CR or LF. It reads the file in 1 MB blocks, each searched with the SIMD
// searches of bytes: for '"', for "\n\n", and for "\n\r\n" only in a
// block holding a CR; with quotes, each quoted field's text is searched
// for CR and LF. A quote inside an unquoted value (refused by readers and
// by DuckDB) may pair quotes wrongly: the answer can then be false for a
// file whose records are lines (it is read in Go, numbered by line all the
// same).
func recordsAreLines(ctx context.Context, path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	inQuote := false
	var last [2]byte // the two bytes before the block
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, err := io.ReadFull(f, buf)
		b := buf[:n]
		if n > 0 {
			// a blank line across the blocks' boundary
			if last[1] == '\n' && (b[0] == '\n' || b[0] == '\r' && (n < 2 || b[1] == '\n')) ||
				last[0] == '\n' && last[1] == '\r' && b[0] == '\n' {
				return false, nil
			}
			if bytes.Index(b, []byte("\n\n")) >= 0 ||
				bytes.IndexByte(b, '\r') >= 0 && bytes.Index(b, []byte("\n\r\n")) >= 0 {
				return false, nil
			}
			for i := 0; i < len(b); {
				j := bytes.IndexByte(b[i:], '"')
				if !inQuote {
					if j < 0 {
						break
					}
					inQuote, i = true, i+j+1
					continue
				}
				end := len(b)
				if j >= 0 {
					end = i + j
				}
				if bytes.IndexByte(b[i:end], '\n') >= 0 || bytes.IndexByte(b[i:end], '\r') >= 0 {
					return false, nil
				}
				if j < 0 {
					break
				}
				inQuote, i = false, end+1
			}
			if n >= 2 {
				last = [2]byte{b[n-2], b[n-1]}
			} else {
				last = [2]byte{last[1], b[0]}
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// lineScan is recordsAreLines over a CSV, started when the file was loaded
// for a Run that numbers its lines (startLineScan).
type lineScan struct {
	done   chan struct{} // closed once ok and err are set
	ok     bool
	err    error
	cancel context.CancelFunc // Close stops it
}

// startLineScan starts recordsAreLines over s on a goroutine of its own,
// as s is loaded with Options.Rows: Run's rows pass (or the exact path's
// insertLines) waits for its answer before it numbers the records, and the
// scan runs beside the loads and Run's start, which leave a core idle,
// instead of between Run's start and the rows pass's CSV copies (30–60 ms
// there at 1M ids per side; BENCHMARKS.md #19, session 12). Like the
// header read at load, its answer is the file's as loaded.
func startLineScan(s *source) {
	ctx, cancel := context.WithCancel(context.Background())
	ls := &lineScan{done: make(chan struct{}), cancel: cancel}
	s.lineScan = ls
	go func() {
		defer close(ls.done)
		ls.ok, ls.err = recordsAreLines(ctx, s.path)
	}()
}

// recordsAreLines is the answer of the scan started at load
// (startLineScan), or of one run now when none was started or it ended in
// an error (stopped by Close).
func (s *source) recordsAreLines(ctx context.Context) (bool, error) {
	if ls := s.lineScan; ls != nil {
		select {
		case <-ls.done:
			if ls.err == nil {
				return ls.ok, nil
			}
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return recordsAreLines(ctx, s.path)
}
