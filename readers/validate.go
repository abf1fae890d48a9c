package readers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
)

// Report is the complete verdict on a batch of one or more files.
type Report struct {
	Rows, Valid, Rejected int
	// Rejects lists every problem, in file and row order; a row may have
	// several (one per bad cell). Rejected counts rows, not problems.
	Rejects []paybatch.RowError
	Totals  paybatch.Totals      // valid rows per currency
	Counts  map[string]int       // valid rows per currency
	Files   []paybatch.InputFile // path, sha256, rows
	// Unknown lists, per file, the header cells the kind does not use.
	Unknown map[string][]string

	rejected map[paybatch.Source]struct{}
}

// IsRejected reports whether the row at src was rejected (for any reason,
// including being one copy of a duplicated merchant_transaction_id), so a
// second streaming pass can skip it.
func (r *Report) IsRejected(src paybatch.Source) bool {
	_, ok := r.rejected[src]
	return ok
}

// seenRow is what duplicate detection keeps per distinct
// merchant_transaction_id (24 bytes): enough to count a valid row once
// duplicates are known, to name each copy, and to find its id in the arena.
type seenRow struct {
	minor int64
	idOff uint32 // chunk<<20 | offset in chunk
	row   uint32
	file  uint16
	idLen uint16
	cur   int16 // index into curs; -1 when the row was rejected
	dup   bool
}

// idSet finds repeated ids with a 64-bit hash per id (the ids themselves
// sit back to back in arena chunks, so a million ids cost ≈ 60 MB, not a
// million strings, and growing never copies). A hash shared by two
// different ids is resolved exactly in a small spill map.
type idSet struct {
	seed   maphash.Seed
	idx    map[uint64]int32
	spill  map[string]int32
	arenas [][]byte    // chunks of arenaChunk bytes
	rows   [][]seenRow // chunks of rowChunk rows
	n      int32
}

const (
	arenaChunk = 1 << 20
	rowChunk   = 1 << 14
)

func (s *idSet) row(i int32) *seenRow { return &s.rows[i/rowChunk][i%rowChunk] }

func (s *idSet) id(i int32) string {
	r := s.row(i)
	a := s.arenas[r.idOff>>20]
	off := r.idOff & (arenaChunk - 1)
	return string(a[off : off+uint32(r.idLen)])
}

// add records sr under id and returns the index of an earlier row with the
// same id, or -1.
func (s *idSet) add(id string, sr seenRow) int32 {
	h := maphash.String(s.seed, id)
	if i, ok := s.idx[h]; ok {
		if s.id(i) == id {
			return i
		}
		if j, ok := s.spill[id]; ok {
			return j
		}
		s.spill[strings.Clone(id)] = s.push(id, sr)
		return -1
	}
	s.idx[h] = s.push(id, sr)
	return -1
}

func (s *idSet) push(id string, sr seenRow) int32 {
	if len(s.arenas) == 0 || len(s.arenas[len(s.arenas)-1])+len(id) > arenaChunk {
		s.arenas = append(s.arenas, make([]byte, 0, arenaChunk))
	}
	last := len(s.arenas) - 1
	sr.idOff, sr.idLen = uint32(last)<<20|uint32(len(s.arenas[last])), uint16(len(id))
	s.arenas[last] = append(s.arenas[last], id...)
	if s.n%rowChunk == 0 {
		s.rows = append(s.rows, make([]seenRow, 0, rowChunk))
	}
	s.rows[len(s.rows)-1] = append(s.rows[len(s.rows)-1], sr)
	s.n++
	return s.n - 1
}

// Validate reads whole files (streaming) and returns the complete verdict,
// including duplicates of merchant_transaction_id across the batch (a
// duplicate rejects every copy and names each row). Memory grows only with
// the number of distinct ids (≈ 60 bytes each), not with row width or file
// size. A file-level problem in any file is returned as the error.
func Validate(ctx context.Context, paths []string, opts Options) (*Report, error) {
	rep := &Report{
		Totals:   paybatch.Totals{},
		Counts:   map[string]int{},
		Unknown:  map[string][]string{},
		rejected: map[paybatch.Source]struct{}{},
	}
	ids := &idSet{seed: maphash.MakeSeed(), idx: map[uint64]int32{}, spill: map[string]int32{}}
	dups := map[int32][]seenRow{} // first copy's index → every copy, first included
	var curs []paybatch.Currency
	curIdx := func(c paybatch.Currency) int16 {
		for i, x := range curs {
			if x == c {
				return int16(i)
			}
		}
		curs = append(curs, c)
		return int16(len(curs) - 1)
	}
	if len(paths) > 1<<16-1 {
		return nil, fmt.Errorf("%w: %d files in one batch; split it", paybatch.ErrUnusableFile, len(paths))
	}
	type fileInfo struct{ path, sheet, idColumn string }
	var files []fileInfo
	for fi, p := range paths {
		b, err := Open(p, opts)
		if err != nil {
			return nil, err
		}
		// Hash the file while its rows are read.
		hctx, cancel := context.WithCancel(ctx)
		sumc := make(chan hashResult, 1)
		go func() { sum, err := fileSHA256(hctx, p); sumc <- hashResult{sum, err} }()
		closeAll := func() {
			b.Close()
			cancel()
			<-sumc
		}
		files = append(files, fileInfo{p, b.sheet, b.colName(fMerchantTxID)})
		if u := b.Unknown(); len(u) > 0 {
			rep.Unknown[p] = u
		}
		var errs []paybatch.RowError
		for n := 0; ; n++ {
			if n&1023 == 0 && ctx.Err() != nil {
				closeAll()
				return nil, fmt.Errorf("%s: validation stopped: %w", p, ctx.Err())
			}
			row, cells, err := b.nextRow()
			if err == io.EOF {
				break
			}
			if err != nil {
				closeAll()
				return nil, err
			}
			rep.Rows++
			var in paybatch.Instruction
			var id string
			in, id, errs = b.parseRow(row, cells, errs[:0])
			sr := seenRow{file: uint16(fi), cur: -1, row: uint32(row)}
			if len(errs) > 0 {
				rep.Rejects = append(rep.Rejects, errs...)
				rep.rejected[errs[0].Source] = struct{}{}
			} else {
				sr.cur, sr.minor = curIdx(in.Amount.Currency), in.Amount.Minor
			}
			if id == "" {
				continue
			}
			if i := ids.add(id, sr); i >= 0 {
				if _, started := dups[i]; !started {
					ids.row(i).dup = true
					dups[i] = []seenRow{*ids.row(i)}
				}
				dups[i] = append(dups[i], sr)
			}
		}
		err = b.Close()
		h := <-sumc
		cancel()
		if err == nil {
			err = h.err
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		sum := h.sum
		rep.Files = append(rep.Files, paybatch.InputFile{Path: p, SHA256: sum, Rows: b.rows})
	}
	// Count what stayed valid: every copy of a duplicated id is rejected.
	for i := range ids.n {
		if sr := ids.row(i); sr.cur >= 0 && !sr.dup {
			if c := curs[sr.cur]; !c.IsZero() { // void rows carry no amount
				rep.Counts[c.Code()]++
				t := rep.Totals[c.Code()]
				t.Currency = c
				t.Minor += sr.minor
				rep.Totals[c.Code()] = t
			}
		}
	}
	for first, copies := range dups {
		id := ids.id(first)
		where := make([]string, len(copies))
		for i, c := range copies {
			where[i] = rowLabel(files[c.file].path, int64(c.row), len(paths) > 1)
		}
		for _, c := range copies {
			src := paybatch.Source{File: files[c.file].path, Sheet: files[c.file].sheet, Row: int(c.row)}
			rep.rejected[src] = struct{}{}
			rep.Rejects = append(rep.Rejects, paybatch.RowError{
				Source: src, Column: files[c.file].idColumn, Value: id,
				Err: fmt.Errorf("%w: %q appears %d times (%s); every copy is rejected — give each operation its own id",
					paybatch.ErrDuplicateID, id, len(copies), strings.Join(where, ", ")),
			})
		}
	}
	fileIdx := map[string]int{}
	for i, f := range files {
		if _, ok := fileIdx[f.path]; !ok {
			fileIdx[f.path] = i
		}
	}
	slices.SortStableFunc(rep.Rejects, func(a, b paybatch.RowError) int {
		return cmp.Or(cmp.Compare(fileIdx[a.Source.File], fileIdx[b.Source.File]), cmp.Compare(a.Source.Row, b.Source.Row))
	})
	rep.Rejected = len(rep.rejected)
	rep.Valid = rep.Rows - rep.Rejected
	return rep, nil
}

func rowLabel(file string, row int64, withFile bool) string {
	s := "row " + strconv.FormatInt(row, 10)
	if withFile {
		s = file + " " + s
	}
	return s
}

type hashResult struct {
	sum string
	err error
}

func fileSHA256(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
