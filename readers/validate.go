package readers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

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
	// Warnings are things to look at that reject nothing (both readings may
	// be legitimate): ids that differ only in case (DupCase, dupcase) are
	// two operations to paybatch and to the provider, but may be one to a
	// person.
	Warnings []Warning

	rejected map[paybatch.Source]struct{}
}

// IsRejected reports whether the row at src was rejected (for any reason,
// including being one copy of a duplicated merchant_transaction_id), so a
// second streaming pass can skip it.
func (r *Report) IsRejected(src paybatch.Source) bool {
	_, ok := r.rejected[src]
	return ok
}

// seenRow is what duplicate detection knows of a row with an id: enough to
// take a valid row out of the totals once it is known to be a copy, and to
// name each copy.
type seenRow struct {
	minor int64
	row   uint32
	file  uint16
	cur   int16 // index into curs; -1 when the row was rejected
	dup   bool
}

// idSet finds repeated ids. Each row is one entry in an arena of chunks
// (its row, file, currency, amount and id, as varints and bytes: ≈ 26 bytes
// for a 17-byte id), and the low 32 bits of its id's hash, with where the
// entry is, go into one of 256 buckets (see buckets); at the end each
// bucket is sorted by hash and only rows in one run of equal hashes have
// their ids compared, exactly.
// That is sequential memory traffic instead of a hash-map probe per row
// (which dominated the profile: a cache miss for every one of a million
// rows), and ≈ 34 bytes per row: every byte is memory the process must
// fault in, which on this kind of machine costs more than the work on it
// (the 74 bytes of fixed-size records and the sort's array before were a
// third of Validate's CPU).
type idSet struct {
	seed   maphash.Seed
	arenas [][]byte // chunks of arenaChunk bytes
	// buckets[h>>24] lists the hashes whose top 8 bits are h>>24, in
	// reading order, in chunks of bucketChunk: the scatter of a radix sort
	// done as rows are read (by both cores), so the end sorts 256 small
	// lists in cache, half on each core.
	buckets [256][][]idHash
	n       uint32
	dup     map[uint32]bool     // entries of a repeated id (duplicates sets it)
	hash    func(string) uint64 // nil: maphash; tests force collisions
}

// idHash is the low 32 bits of an id's hash and where its entry is
// (chunk<<20 | offset): entries are added in reading order, so that order
// is the order of at.
type idHash struct {
	h, at uint32
}

const (
	arenaChunk  = 1 << 20
	bucketChunk = 1 << 10
)

// entry decodes the entry at at.
func (s *idSet) entry(at uint32) (seenRow, string) {
	a := s.arenas[at>>20][at&(arenaChunk-1):]
	var v [5]uint64
	for i := range v {
		var k int
		if i == 3 {
			var m int64
			m, k = binary.Varint(a)
			v[i] = uint64(m)
		} else {
			v[i], k = binary.Uvarint(a)
		}
		a = a[k:]
	}
	sr := seenRow{row: uint32(v[0]), file: uint16(v[1]), cur: int16(v[2]) - 1, minor: int64(v[3]), dup: s.dup[at]}
	return sr, string(a[:v[4]])
}

func (s *idSet) id(at uint32) string {
	_, id := s.entry(at)
	return id
}

func (s *idSet) add(id string, sr seenRow) {
	if need := 5*binary.MaxVarintLen64 + len(id); len(s.arenas) == 0 || len(s.arenas[len(s.arenas)-1])+need > arenaChunk {
		s.arenas = append(s.arenas, make([]byte, 0, max(arenaChunk, need)))
	}
	last := len(s.arenas) - 1
	a := s.arenas[last]
	at := uint32(last)<<20 | uint32(len(a))
	a = binary.AppendUvarint(a, uint64(sr.row))
	a = binary.AppendUvarint(a, uint64(sr.file))
	a = binary.AppendUvarint(a, uint64(sr.cur+1))
	a = binary.AppendVarint(a, sr.minor)
	a = binary.AppendUvarint(a, uint64(len(id)))
	s.arenas[last] = append(a, id...)
	var h uint64
	if s.hash != nil {
		h = s.hash(id)
	} else {
		h = s.foldHash(id)
	}
	bk := &s.buckets[uint32(h)>>24]
	if n := len(*bk); n == 0 || len((*bk)[n-1]) == bucketChunk {
		*bk = append(*bk, make([]idHash, 0, bucketChunk))
	}
	tail := &(*bk)[len(*bk)-1]
	*tail = append(*tail, idHash{uint32(h), at})
	s.n++
}

// duplicates returns every id that occurs more than once, each as its
// rows' entries in reading order, and marks those rows dup. The
// hashes are of the case-folded id, so the same pass finds the ids that
// differ only in case (caseOnly: one row of each spelling).
func (s *idSet) duplicates() (dups, caseOnly [][]uint32) {
	// Each half of the buckets on its own goroutine; the groups of the
	// first half, then the second.
	type result struct{ dups, caseOnly [][]uint32 }
	var res [2]result
	var wg sync.WaitGroup
	for half := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []idHash
			var count [1<<12 + 1]int32
			for bk := half * 128; bk < half*128+128; bk++ {
				scratch = sortBucket(s.buckets[bk], scratch, &count)
				d, c := s.groups(scratch)
				res[half].dups = append(res[half].dups, d...)
				res[half].caseOnly = append(res[half].caseOnly, c...)
			}
		}()
	}
	wg.Wait()
	for _, r := range res {
		dups, caseOnly = append(dups, r.dups...), append(caseOnly, r.caseOnly...)
	}
	for _, g := range dups {
		for _, k := range g {
			if s.dup == nil {
				s.dup = map[uint32]bool{}
			}
			s.dup[k] = true
		}
	}
	return dups, caseOnly
}

// sortBucket returns the chunks' hashes (one bucket: equal top 8 bits) in
// dst, sorted by hash, stably (equal hashes stay in reading order): a
// counting pass on the next 12 bits scatters them into lists of an entry
// or two, each then sorted by insertion. count is the caller's scratch.
func sortBucket(chunks [][]idHash, dst []idHash, count *[1<<12 + 1]int32) []idHash {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	dst = slices.Grow(dst[:0], n)[:n]
	*count = [1<<12 + 1]int32{}
	for _, c := range chunks {
		for _, e := range c {
			count[(e.h>>12)&0xfff+1]++
		}
	}
	for i := 1; i < len(count); i++ {
		count[i] += count[i-1]
	}
	next := *count
	for _, c := range chunks {
		for _, e := range c {
			d := (e.h >> 12) & 0xfff
			dst[next[d]] = e
			next[d]++
		}
	}
	for d := range 1 << 12 {
		b := dst[count[d]:count[d+1]]
		for i := 1; i < len(b); i++ { // stable insertion sort by the low 12 bits
			for j := i; j > 0 && b[j].h < b[j-1].h; j-- {
				b[j], b[j-1] = b[j-1], b[j]
			}
		}
	}
	return dst
}

// groups finds, in hashes sorted by hash, the ids that occur more than
// once (each as its rows' entries in reading order) and the ids that
// differ only in case (one entry of each spelling). Only rows in one run
// of equal hashes have their ids compared, exactly.
func (s *idSet) groups(h []idHash) (dups, caseOnly [][]uint32) {
	for i := 0; i < len(h); {
		j := i + 1
		for j < len(h) && h[j].h == h[i].h {
			j++
		}
		if j-i > 1 {
			groups := map[string][]uint32{}
			var order []string
			for _, e := range h[i:j] {
				id := s.id(e.at)
				if _, ok := groups[id]; !ok {
					order = append(order, id)
				}
				groups[id] = append(groups[id], e.at)
			}
			for _, id := range order {
				if g := groups[id]; len(g) > 1 {
					dups = append(dups, g)
				}
			}
			// spellings of one folded id (a hash collision is no group)
			used := make([]bool, len(order))
			for a := range order {
				if used[a] {
					continue
				}
				g := []uint32{groups[order[a]][0]}
				for b := a + 1; b < len(order); b++ {
					if !used[b] && strings.EqualFold(order[a], order[b]) {
						used[b] = true
						g = append(g, groups[order[b]][0])
					}
				}
				if len(g) > 1 {
					slices.Sort(g)
					caseOnly = append(caseOnly, g)
				}
			}
		}
		i = j
	}
	return dups, caseOnly
}

// foldHash hashes id with ASCII letters (and, for other text, every
// letter) in lower case, without allocating for an ASCII id.
func (s *idSet) foldHash(id string) uint64 {
	var buf [128]byte
	if len(id) > len(buf) || !isASCII(id) {
		return maphash.String(s.seed, strings.ToLower(id))
	}
	b := append(buf[:0], id...)
	for j, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		}
	}
	return maphash.Bytes(s.seed, b)
}

// Validate reads whole files (streaming) and returns the complete verdict,
// including duplicates of merchant_transaction_id across the batch (a
// duplicate rejects every copy and names each row). Memory grows only with
// the number of rows (≈ 60 bytes each: the id, its hash and where it was),
// not with row width or file size; rejects are kept in full. A file-level
// problem in any file is returned as the error (exit 2: use nothing).
func Validate(ctx context.Context, paths []string, opts Options) (*Report, error) {
	if len(paths) > 1<<16-1 {
		return nil, fmt.Errorf("%w: %d files in one batch; split it", paybatch.ErrUnusableFile, len(paths))
	}
	ins := make([]Input, 0, len(paths))
	defer func() {
		for _, in := range ins {
			in.close()
		}
	}()
	for _, p := range paths {
		in, err := OpenInput(p, opts.MaxFileSize, nil)
		if err != nil {
			return nil, err
		}
		ins = append(ins, in)
	}
	return ValidateInputs(ctx, ins, opts)
}

// Input is one input file opened once (OpenInput, or any io.ReaderAt):
// validated, hashed and read again for sending through R, never by its
// name again, so the bytes sent are the bytes validated.
type Input struct {
	Name string // the path, as every message names it
	R    io.ReaderAt
	Size int64
	c    io.Closer // what OpenInput opened
}

// Close releases what OpenInput opened (nothing for an Input made by hand).
func (in Input) Close() error { return in.close() }

func (in Input) close() error {
	if in.c == nil {
		return nil
	}
	return in.c.Close()
}

// OpenInput opens path as one input file: a regular, non-empty file of at
// most maxSize bytes (0: DefaultMaxFileSize), through open (nil: os.Open).
func OpenInput(path string, maxSize int64, open func(string) (*os.File, error)) (Input, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxFileSize
	}
	f, size, err := openFileWith(path, maxSize, open)
	if err != nil {
		return Input{}, err
	}
	return Input{Name: path, R: f, Size: size, c: f}, nil
}

// FileInput is the open file f as an Input named name, of f's size now,
// without OpenInput's checks (Validate still refuses an empty or oversize
// file, naming it); Close closes f.
func FileInput(name string, f *os.File) (Input, error) {
	st, err := f.Stat()
	if err != nil {
		return Input{}, fmt.Errorf("%s: %w: %v", name, paybatch.ErrUnusableFile, err)
	}
	return Input{Name: name, R: f, Size: st.Size(), c: f}, nil
}

// SHA256 is FileSHA256 of the input, read through R.
func (in Input) SHA256(ctx context.Context) (string, error) {
	return readerSHA256(ctx, io.NewSectionReader(in.R, 0, in.Size))
}

// ValidateInputs is Validate of files already open: each is read once (a
// CSV is hashed from the same bytes; an XLSX alongside). The inputs stay
// open; the caller closes them.
func ValidateInputs(ctx context.Context, ins []Input, opts Options) (*Report, error) {
	rep := &Report{
		Totals:   paybatch.Totals{},
		Counts:   map[string]int{},
		Unknown:  map[string][]string{},
		rejected: map[paybatch.Source]struct{}{},
	}
	ids := &idSet{seed: maphash.MakeSeed()}
	// The valid rows' totals per currency, as read; the copies of a
	// repeated id are taken out at the end.
	var curs []paybatch.Currency
	var sums []int64
	var counts []int
	curIdx := func(c paybatch.Currency) int16 {
		for i, x := range curs {
			if x == c {
				return int16(i)
			}
		}
		curs, sums, counts = append(curs, c), append(sums, 0), append(counts, 0)
		return int16(len(curs) - 1)
	}
	if len(ins) > 1<<16-1 {
		return nil, fmt.Errorf("%w: %d files in one batch; split it", paybatch.ErrUnusableFile, len(ins))
	}
	paths := make([]string, len(ins))
	for i, in := range ins {
		paths[i] = in.Name
	}
	type fileInfo struct{ path, sheet, idColumn string }
	var files []fileInfo
	for fi, in := range ins {
		// One read: a CSV is hashed as its rows are read (the same bytes);
		// an XLSX, which the zip reader reads out of order, alongside.
		p, f, size := in.Name, in.R, in.Size
		inline := sha256.New()
		// Without Each no instruction leaves this loop: the rows can be
		// read into reused buffers (Batch.borrowed). With it, the rows are
		// strings of their own, parsed on both cores all the same: Each
		// is called here, in file order.
		mode := readBorrowed
		if opts.Each != nil {
			mode = readOwned
		}
		b, err := openBatch(f, size, p, opts, inline, mode, nil)
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithCancel(ctx)
		sumc := make(chan hashResult, 1)
		if b.delim != 0 {
			sumc <- hashResult{}
		} else {
			go func() { sum, err := readerSHA256(hctx, io.NewSectionReader(f, 0, size)); sumc <- hashResult{sum, err} }()
		}
		closeAll := func() {
			cancel()
			<-sumc
			b.Close()
		}
		files = append(files, fileInfo{p, b.sheet, b.colName(fMerchantTxID)})
		firstReject := len(rep.Rejects)
		if u := b.Unknown(); len(u) > 0 {
			rep.Unknown[p] = u
		}
		var errs []paybatch.RowError
		for n := 0; ; n++ {
			if n&1023 == 0 && ctx.Err() != nil {
				closeAll()
				return nil, fmt.Errorf("%s: validation stopped: %w", p, ctx.Err())
			}
			row, cells, pv, pin, err := b.nextParsed()
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
			switch {
			case pv != nil: // parsed by the read-ahead goroutine
				id, errs = pv.id, pv.errs
				if pin != nil { // the whole instruction of an owned row (readOwned)
					in = *pin
				}
				in.Amount = paybatch.Money{Currency: pv.cur, Minor: pv.minor}
			case b.borrowed:
				var v rowVerdict
				v, errs = b.verdict(&b.cc, row, cells, errs)
				id, errs = v.id, v.errs
				in.Amount = paybatch.Money{Currency: v.cur, Minor: v.minor}
			default:
				in, id, errs = b.parseRow(row, cells, errs[:0])
			}
			sr := seenRow{file: uint16(fi), cur: -1, row: uint32(row)}
			if len(errs) > 0 {
				id := strings.Clone(id) // kept with the rejects (see rowCtx.fail)
				for i := range errs {
					errs[i].MerchantTxID = id // "" when the id itself was unreadable
				}
				rep.Rejects = append(rep.Rejects, errs...)
				rep.rejected[errs[0].Source] = struct{}{}
			} else {
				sr.cur, sr.minor = curIdx(in.Amount.Currency), in.Amount.Minor
				if opts.Each != nil {
					if err := opts.Each(in, b.pos); err != nil {
						closeAll()
						return nil, err
					}
				}
			}
			if id == "" {
				continue
			}
			if sr.cur >= 0 {
				sums[sr.cur] += sr.minor
				counts[sr.cur]++
			}
			ids.add(id, sr)
		}
		b.explainMerged(rep.Rejects[firstReject:])
		h := <-sumc
		cancel()
		err = b.Close()
		if b.delim != 0 {
			h.sum = hex.EncodeToString(inline.Sum(nil)) // every byte went through: the rows were read to the end
		}
		if err == nil {
			err = h.err
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		sum := h.sum
		rep.Files = append(rep.Files, paybatch.InputFile{Path: p, SHA256: sum, Rows: b.rows})
	}
	// Every copy of a duplicated id is rejected; count what stayed valid.
	dups, caseOnly := ids.duplicates()
	for _, g := range dups {
		for _, k := range g {
			if sr, _ := ids.entry(k); sr.cur >= 0 {
				sums[sr.cur] -= sr.minor
				counts[sr.cur]--
			}
		}
	}
	for i, c := range curs {
		if counts[i] > 0 && !c.IsZero() { // void rows carry no amount
			rep.Counts[c.Code()] = counts[i]
			rep.Totals[c.Code()] = paybatch.Money{Currency: c, Minor: sums[i]}
		}
	}
	for _, g := range dups {
		id := ids.id(g[0])
		copies := make([]seenRow, len(g))
		for i, k := range g {
			copies[i], _ = ids.entry(k)
		}
		where := make([]string, len(copies))
		for i, c := range copies {
			where[i] = rowLabel(files[c.file].path, int64(c.row), len(paths) > 1)
		}
		for _, c := range copies {
			src := paybatch.Source{File: files[c.file].path, Sheet: files[c.file].sheet, Row: int(c.row)}
			rep.rejected[src] = struct{}{}
			rep.Rejects = append(rep.Rejects, paybatch.RowError{
				Source: src, Column: files[c.file].idColumn, Value: id, MerchantTxID: id,
				Err: fmt.Errorf("%w: %q appears %d times (%s); every copy is rejected — give each operation its own id",
					paybatch.ErrDuplicateID, id, len(copies), strings.Join(where, ", ")),
			})
		}
	}
	for _, g := range caseOnly {
		first, _ := ids.entry(g[0])
		w := Warning{Column: files[first.file].idColumn}
		var quoted []string
		for _, k := range g {
			sr, _ := ids.entry(k)
			f := files[sr.file]
			w.Sources = append(w.Sources, paybatch.Source{File: f.path, Sheet: f.sheet, Row: int(sr.row)})
			w.Values = append(w.Values, ids.id(k))
			quoted = append(quoted, fmt.Sprintf("%q (%s)", ids.id(k), rowLabel(f.path, int64(sr.row), len(paths) > 1)))
		}
		w.Message = fmt.Sprintf("merchant_transaction_id values that differ only in case: %s; each is a separate operation and will be sent — if they are one, remove the copy", strings.Join(quoted, ", "))
		rep.Warnings = append(rep.Warnings, w)
	}
	fileIdx := map[string]int{}
	for i, f := range files {
		if _, ok := fileIdx[f.path]; !ok {
			fileIdx[f.path] = i
		}
	}
	slices.SortStableFunc(rep.Warnings, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(fileIdx[a.Sources[0].File], fileIdx[b.Sources[0].File]), cmp.Compare(a.Sources[0].Row, b.Sources[0].Row))
	})
	slices.SortStableFunc(rep.Rejects, func(a, b paybatch.RowError) int {
		return cmp.Or(cmp.Compare(fileIdx[a.Source.File], fileIdx[b.Source.File]), cmp.Compare(a.Source.Row, b.Source.Row))
	})
	rep.Rejected = len(rep.rejected)
	rep.Valid = rep.Rows - rep.Rejected
	return rep, nil
}

// rowVerdict is what Validate needs of a parsed row: its id (borrowed
// from the batch, see Batch.borrowed), its amount when valid, its problems
// (its own: read from copies of the cells) when not. (The whole
// instruction of a row that is not borrowed, for Each, is in rowBatch.ins.)
type rowVerdict struct {
	id    string
	cur   paybatch.Currency
	minor int64
	errs  []paybatch.RowError
}

// verdict parses a row of a borrowed batch with the cache cc.
func (b *Batch) verdict(cc *curCache, row int, cells []cell, errs []paybatch.RowError) (rowVerdict, []paybatch.RowError) {
	in, id, errs := b.parseRowWith(cc, row, cells, errs[:0])
	if len(errs) > 0 {
		// A reject keeps values of the row: read it again from copies
		// that are its own.
		own := make([]cell, len(cells))
		for i, c := range cells {
			own[i] = cell{s: strings.Clone(c.s), num: c.num, formula: c.formula}
		}
		in, id, errs = b.parseRowWith(cc, row, own, errs[:0])
		return rowVerdict{id: id, errs: slices.Clone(errs)}, errs
	}
	return rowVerdict{id: id, cur: in.Amount.Currency, minor: in.Amount.Minor}, errs
}

// parseAhead is the read-ahead goroutine's share of Validate's work (see
// prefetcher.work): it parses a batch's rows with a cache of its own.
// A row of a batch that is not borrowed is parsed once, its instruction
// kept whole, exactly as the consumer's parseRow would (rows, rejects and
// their order do not depend on which goroutine parsed a row:
// TestEachParallelMatchesSerial).
func (b *Batch) parseAhead(rb *rowBatch) {
	var errs []paybatch.RowError
	for k, row := range rb.rows {
		var v rowVerdict
		if b.borrowed {
			v, errs = b.verdict(&b.ccAhead, row, rb.row(k), errs)
		} else {
			var in paybatch.Instruction
			in, v.id, errs = b.parseRowWith(&b.ccAhead, row, rb.row(k), errs[:0])
			v.cur, v.minor = in.Amount.Currency, in.Amount.Minor
			if len(errs) > 0 {
				v.errs = slices.Clone(errs)
			}
			rb.ins = append(rb.ins, in)
		}
		rb.parsed = append(rb.parsed, v)
	}
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

// Warning is a finding that rejects nothing (see Report.Warnings).
type Warning struct {
	Sources []paybatch.Source // every row concerned
	Column  string            // the header as written
	Values  []string          // the values, one per source
	Message string
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// explainMerged rewords the rejects of an XLSX sheet whose cell is part of
// merged cells (the value sits in the first cell only): "missing value"
// would send the user looking for a blank cell they cannot see.
func (b *Batch) explainMerged(rejects []paybatch.RowError) {
	if b.xs == nil || len(b.xs.merges) == 0 {
		return
	}
	col := map[string]int{}
	for f := fMerchantTxID; f < numFields; f++ {
		if b.cm.idx[f] >= 0 {
			col[b.cm.header[f]] = b.cm.idx[f]
		}
	}
	for i := range rejects {
		r := &rejects[i]
		c, ok := col[r.Column]
		if !ok || r.Source.File != b.path {
			continue
		}
		if m, ok := mergedAt(b.xs.merges, c, r.Source.Row); ok {
			r.Err = fmt.Errorf("%w: the cell %s%d is part of the merged cells %s, whose value sits in %s%d only; unmerge the cells and give every row its own value",
				paybatch.ErrMissingField, colName(c), r.Source.Row, m, colName(m.c0), m.r0)
		}
	}
}
