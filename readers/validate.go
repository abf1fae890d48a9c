package readers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// seenRow is what duplicate detection keeps per merchant_transaction_id:
// enough to un-count a row that turns out to be a duplicate, and to name it.
type seenRow struct {
	file   int32
	cur    int16 // index into curs; -1 when the row was already rejected
	dup    bool
	row    int64
	minor  int64
	column string // the id column's header as written
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
	seen := map[string]int32{}     // id → index into rows
	var rows []seenRow             // one per distinct id
	dups := map[string][]seenRow{} // id → every copy, first included
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
	type fileInfo struct{ path, sheet string }
	var files []fileInfo
	for fi, p := range paths {
		sum, err := fileSHA256(p)
		if err != nil {
			return nil, err
		}
		b, err := Open(p, opts)
		if err != nil {
			return nil, err
		}
		files = append(files, fileInfo{p, b.sheet})
		if u := b.Unknown(); len(u) > 0 {
			rep.Unknown[p] = u
		}
		var errs []paybatch.RowError
		for n := 0; ; n++ {
			if n&1023 == 0 && ctx.Err() != nil {
				b.Close()
				return nil, fmt.Errorf("%s: validation stopped: %w", p, ctx.Err())
			}
			row, cells, err := b.nextRow()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Close()
				return nil, err
			}
			rep.Rows++
			var in paybatch.Instruction
			var id string
			in, id, errs = b.parseRow(row, cells, errs[:0])
			sr := seenRow{file: int32(fi), cur: -1, row: int64(row), column: b.colName(fMerchantTxID)}
			if len(errs) > 0 {
				rep.Rejects = append(rep.Rejects, errs...)
				rep.rejected[errs[0].Source] = struct{}{}
			} else {
				sr.cur, sr.minor = curIdx(in.Amount.Currency), in.Amount.Minor
				if in.Amount.Currency.IsZero() { // void: no amount
					sr.cur = curIdx(paybatch.Currency{})
				}
			}
			if id == "" {
				continue
			}
			if i, ok := seen[id]; ok {
				key := strings.Clone(id)
				if _, started := dups[key]; !started {
					rows[i].dup = true
					dups[key] = []seenRow{rows[i]}
				}
				dups[key] = append(dups[key], sr)
				continue
			}
			seen[strings.Clone(id)] = int32(len(rows))
			rows = append(rows, sr)
		}
		rep.Files = append(rep.Files, paybatch.InputFile{Path: p, SHA256: sum, Rows: b.rows})
		if err := b.Close(); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	// Count what stayed valid: every copy of a duplicated id is rejected.
	for _, sr := range rows {
		if sr.cur >= 0 && !sr.dup {
			if c := curs[sr.cur]; !c.IsZero() { // void rows carry no amount
				rep.Counts[c.Code()]++
				t := rep.Totals[c.Code()]
				t.Currency = c
				t.Minor += sr.minor
				rep.Totals[c.Code()] = t
			}
		}
	}
	for id, copies := range dups {
		where := make([]string, len(copies))
		for i, c := range copies {
			where[i] = rowLabel(files[c.file].path, c.row, len(paths) > 1)
		}
		for _, c := range copies {
			src := paybatch.Source{File: files[c.file].path, Sheet: files[c.file].sheet, Row: int(c.row)}
			rep.rejected[src] = struct{}{}
			rep.Rejects = append(rep.Rejects, paybatch.RowError{
				Source: src, Column: c.column, Value: id,
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

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", p, paybatch.ErrUnusableFile, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w: %v", p, paybatch.ErrUnusableFile, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
