package web

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/readers"
)

// The preview of a batch — its valid rows as they will be sent — is shown
// a page at a time. For a CSV it is read from the stored upload itself when
// a page is asked for: validation keeps, per page, where in the file its
// first row starts (readers.Position) and the page is read from there by
// the same readers, with the same options and the same clock as validation
// (previewAt). Nothing of the rows is copied at upload. An XLSX (whose
// sheet XML cannot be read from the middle) or a UTF-16 text keeps the rows
// in a page file (pagefile.go) written during validation.
//
// preview.at, beside the upload, is the index of a CSV's preview:
//
//	"pbpvat1\n", the validation's clock (int64 Unix nanoseconds),
//	then per page: offset, line (the readers.Position to read from) and
//	skip (rows given to Each to pass over first), int64 little-endian.
//
// preview.drop (only when rows that passed their own checks were refused at
// the end as copies of a repeated id) lists those rows' numbers, ascending,
// uint32 little-endian: a page passes over them.
const previewMagic = "pbpvat1\n"

func previewAtPath(b Batch) string   { return filepath.Join(filepath.Dir(b.Path), "preview.at") }
func previewDropPath(b Batch) string { return filepath.Join(filepath.Dir(b.Path), "preview.drop") }

// previewEntry is where a page of a CSV's preview starts.
type previewEntry struct {
	at   readers.Position
	skip int
}

// previewPass gathers a batch's preview during its validation: each row
// Each is given comes through add.
type previewPass struct {
	s     *Server
	b     *Batch
	at    time.Time // the validation's clock
	seen  int
	sheet string // the sheet rows come from (the reader's, also when b.Sheet is "")

	marks []readers.Position // every pageSize-th row given to Each (a CSV)
	last  readers.Position   // the last row given to Each (a CSV)
	span  int64              // the most bytes a page may span in the upload (maxPreviewSpan)
	from  bool               // the rows come with positions (a CSV): the preview is read from the upload
	lost  bool               // a row came without one all the same
	pw    *pageWriter        // the page file (an XLSX, a UTF-16 text; or tests)
	file  bool               // write the page file even when positions come (tests)
	err   error
}

// maxPreviewSpan bounds the bytes of the upload a preview page is read
// from (from its first row to its last). A page of 50 rows of a batch is a
// few KB; only rows refused by the thousand between valid ones make it
// longer, and such a batch keeps its preview in a page file instead, so
// that no page costs more than reading this much (≈ 40,000 short rows).
const maxPreviewSpan = 2 << 20

// removePreview removes what an earlier validation of b left.
func removePreview(b Batch) {
	for _, p := range []string{previewPath(b), previewPath(b) + ".idx", previewAtPath(b), previewDropPath(b)} {
		os.Remove(p)
	}
}

func (s *Server) newPreviewPass(b *Batch, at time.Time) *previewPass {
	removePreview(*b)
	span := s.previewSpan
	if span <= 0 {
		span = maxPreviewSpan
	}
	return &previewPass{s: s, b: b, at: at, file: s.previewFile, span: span}
}

// add takes a row given to Each: its position, or its preview record when
// the file gives no positions (known at its first row).
func (p *previewPass) add(in paybatch.Instruction, at readers.Position, bacs time.Time) error {
	if p.seen == 0 {
		p.sheet = in.Source.Sheet
		if !at.Valid() || p.file {
			if p.pw, p.err = createPageFile(previewPath(*p.b)); p.err != nil {
				return p.err
			}
		}
		p.from = at.Valid()
	}
	if p.from {
		if !at.Valid() {
			p.lost = true // cannot happen; if it did, the marks would be wrong: the page file it is (finish)
		}
		if p.seen%pageSize == 0 {
			p.marks = append(p.marks, at)
		}
		p.last = at
	}
	p.seen++
	if p.pw != nil {
		return writePreview(p.pw, in, bacs)
	}
	return nil
}

// abort removes what was written.
func (p *previewPass) abort() {
	if p.pw != nil {
		p.pw.abort()
	}
	removePreview(*p.b)
}

// positioned reports whether the preview is read from the upload.
func (p *previewPass) positioned() bool { return p.from && len(p.marks) > 0 }

// sparse reports whether a page would span more than p.span bytes of the
// upload: from one mark to the next (or to the last row).
func (p *previewPass) sparse() bool {
	for i, m := range p.marks {
		next := p.last.Offset
		if i+1 < len(p.marks) {
			next = p.marks[i+1].Offset
		}
		if next-m.Offset > p.span {
			return true
		}
	}
	return false
}

// finish completes the preview once validation is done: when rows it saw
// were refused at the end (rep.Valid < seen), the rows are read again
// without them and the facts gathered again, which it returns; otherwise
// fa. A CSV whose pages would span too much of it (sparse) gets its page
// file from a second read.
func (p *previewPass) finish(ctx context.Context, rep *readers.Report, fa *facts) (*facts, error) {
	paged := p.pw != nil
	if paged {
		err := p.pw.close()
		p.pw = nil
		if err != nil {
			return nil, err
		}
	}
	dups := p.seen != rep.Valid
	if dups && paged {
		var err error
		if fa, err = p.s.refilter(ctx, p.b, rep, p.sheet, p.at); err != nil {
			return nil, err
		}
	}
	if !p.positioned() {
		return fa, nil
	}
	sparse := p.sparse() || p.lost
	if sparse && paged {
		return fa, nil // the page file is there (tests)
	}
	if !dups && !sparse {
		pages := make([]previewEntry, len(p.marks))
		for i, m := range p.marks {
			pages[i] = previewEntry{at: m}
		}
		return fa, writePreviewIndex(*p.b, p.at, pages, nil)
	}
	// Read the upload again: without the rows refused at the end, for the
	// facts and for where each page starts (the mark at or before its first
	// row, and how many rows Each was given from there to it); or, sparse,
	// into the page file.
	if dups {
		fa = p.s.newFacts(ctx, p.b, p.at)
	}
	var pw *pageWriter
	if sparse {
		var err error
		if pw, err = createPageFile(previewPath(*p.b)); err != nil {
			return nil, err
		}
		p.pw = pw // abort removes it
	}
	var pages []previewEntry
	var drop []uint32
	var werr error
	kept, j := 0, 0
	err := p.s.readPreviewRows(ctx, *p.b, p.at, p.marks[0], 0, func(in paybatch.Instruction) bool {
		defer func() { j++ }()
		if dups && rep.IsRejected(in.Source) {
			drop = append(drop, uint32(in.Source.Row))
			return true
		}
		kept++
		bacs := p.s.bacsDate(in, fa.today)
		if dups {
			fa.add(in.Source.Row, in.MerchantTxID, in.Amount, !bacs.IsZero())
		}
		if sparse {
			werr = writePreview(pw, in, bacs)
			return werr == nil
		}
		if (kept-1)%pageSize == 0 {
			pages = append(pages, previewEntry{at: p.marks[j/pageSize], skip: j % pageSize})
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if dups {
		if ferr := fa.finish(); err == nil {
			err = ferr
		}
	}
	if err == nil && (j != p.seen || kept != rep.Valid) {
		err = fmt.Errorf("batch %d: the upload read again gave %d rows (%d kept), validation %d (%d valid)", p.b.ID, j, kept, p.seen, rep.Valid)
	}
	if err != nil {
		return nil, err
	}
	if sparse {
		p.pw = nil
		return fa, pw.close()
	}
	return fa, writePreviewIndex(*p.b, p.at, pages, drop)
}

// readerOptionsAt are the batch's reader options on the clock at: the
// options of its validation, to read its rows again as they were read.
func (s *Server) readerOptionsAt(b Batch, at time.Time) readers.Options {
	return b.readerOptions(func() time.Time { return at }, s.cfg.MaxUpload)
}

// readPreviewRows reads the rows of the stored CSV upload that passed their
// own checks (the rows validation gave Each), from the position from on,
// passing over the first skip of them, and gives each to fn until it
// returns false.
func (s *Server) readPreviewRows(ctx context.Context, b Batch, at time.Time, from readers.Position, skip int, fn func(paybatch.Instruction) bool) error {
	f, err := os.Open(b.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	rb, err := readers.OpenAt(f, st.Size(), b.Path, s.readerOptionsAt(b, at), from)
	if err != nil {
		return s.fileErr(&b, err)
	}
	defer rb.Close()
	for in, err := range rb.All(ctx) {
		if err != nil {
			var re *paybatch.RowError
			if errors.As(err, &re) {
				continue // refused by its own checks: never given to Each
			}
			return s.fileErr(&b, err)
		}
		if skip > 0 {
			skip--
			continue
		}
		if !fn(in) {
			break
		}
	}
	return nil
}

func writePreviewIndex(b Batch, at time.Time, pages []previewEntry, drop []uint32) error {
	buf := make([]byte, 0, len(previewMagic)+8+24*len(pages))
	buf = append(buf, previewMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(at.UnixNano()))
	for _, p := range pages {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(p.at.Offset))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(p.at.Line))
		buf = binary.LittleEndian.AppendUint64(buf, uint64(p.skip))
	}
	if len(drop) > 0 {
		d := make([]byte, 0, 4*len(drop))
		for _, r := range drop {
			d = binary.LittleEndian.AppendUint32(d, r)
		}
		if err := os.WriteFile(previewDropPath(b), d, 0o640); err != nil {
			return err
		}
	}
	return os.WriteFile(previewAtPath(b), buf, 0o640)
}

// readPreviewIndex returns the validation's clock and where page p
// (1-based) starts; ok is false when the batch has no such index (its
// preview is a page file) or no page p.
func readPreviewIndex(b Batch, p int) (at time.Time, e previewEntry, ok bool, err error) {
	f, err := os.Open(previewAtPath(b))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, e, false, nil
	}
	if err != nil {
		return time.Time{}, e, false, err
	}
	defer f.Close()
	var head [len(previewMagic) + 8]byte
	if _, err := io.ReadFull(f, head[:]); err != nil || string(head[:len(previewMagic)]) != previewMagic {
		return time.Time{}, e, false, fmt.Errorf("batch %d: damaged preview index", b.ID)
	}
	at = time.Unix(0, int64(binary.LittleEndian.Uint64(head[len(previewMagic):])))
	if p < 1 {
		return at, e, false, nil
	}
	var ent [24]byte
	if _, err := f.ReadAt(ent[:], int64(len(head))+int64(p-1)*24); err != nil {
		if err == io.EOF {
			return at, e, false, nil
		}
		return at, e, false, err
	}
	e.at.Offset = int64(binary.LittleEndian.Uint64(ent[0:]))
	e.at.Line = int(binary.LittleEndian.Uint64(ent[8:]))
	e.skip = int(binary.LittleEndian.Uint64(ent[16:]))
	return at, e, true, nil
}

// readDropped is the rows preview.drop lists (none without the file).
func readDropped(b Batch) ([]uint32, error) {
	d, err := os.ReadFile(previewDropPath(b))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]uint32, len(d)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(d[4*i:])
	}
	return out, nil
}

// preview is page p (1-based) of the valid rows as they will be sent: from
// the upload for a CSV (previewAt), else from the page file. For
// SmarterPay the date is the one Bacs will use (the next collectable
// banking day, in London), with the requested date beside it when they
// differ.
func (s *Server) preview(ctx context.Context, b Batch, p int) ([]previewRow, error) {
	rows, ok, err := s.previewAt(ctx, b, p)
	if ok || err != nil {
		return rows, err
	}
	return previewFromFile(b, p)
}

// previewAt is page p read from the stored CSV upload; ok is false when
// the batch keeps its preview in a page file.
func (s *Server) previewAt(ctx context.Context, b Batch, p int) ([]previewRow, bool, error) {
	at, e, ok, err := readPreviewIndex(b, p)
	if err != nil || !ok {
		if err == nil && !at.IsZero() {
			return nil, true, nil // a page past the last
		}
		return nil, false, err
	}
	drop, err := readDropped(b)
	if err != nil {
		return nil, true, err
	}
	want := min(pageSize, b.Valid-(p-1)*pageSize)
	out := make([]previewRow, 0, max(want, 0))
	today := smarterpay.Today(at)
	err = s.readPreviewRows(ctx, b, at, e.at, e.skip, func(in paybatch.Instruction) bool {
		if _, found := slices.BinarySearch(drop, uint32(in.Source.Row)); found {
			return true
		}
		out = append(out, previewRowOf(in.Source.Row, in.MerchantTxID, in.Account(), in.TransactionRef, in.OrderRef,
			in.Description, in.Amount, in.CollectionDate, s.bacsDate(in, today)))
		return len(out) < want
	})
	return out, true, err
}

// previewFromFile is page p of the preview page file.
func previewFromFile(b Batch, p int) ([]previewRow, error) {
	recs, err := readPage(previewPath(b), p)
	if err != nil {
		return nil, err
	}
	out := make([]previewRow, 0, len(recs))
	for _, rec := range recs {
		if len(rec) != pvFields {
			return nil, fmt.Errorf("batch %d: damaged preview (a record of %d fields)", b.ID, len(rec))
		}
		row, _ := strconv.Atoi(rec[pvRow])
		var amt paybatch.Money
		if rec[pvCurrency] != "" {
			c, err := paybatch.ParseCurrency(rec[pvCurrency])
			if err != nil {
				return nil, err
			}
			minor, err := strconv.ParseInt(rec[pvMinor], 10, 64)
			if err != nil {
				return nil, err
			}
			amt = paybatch.Money{Currency: c, Minor: minor}
		}
		var req, bacs time.Time
		if rec[pvDate] != "" {
			req, _ = time.Parse(time.DateOnly, rec[pvDate])
			if rec[pvBacsDate] != "" {
				bacs, _ = time.Parse(time.DateOnly, rec[pvBacsDate])
			}
		}
		out = append(out, previewRowOf(row, rec[pvID], rec[pvAccount], rec[pvTxRef], rec[pvOrderRef], rec[pvDescription], amt, req, bacs))
	}
	return out, nil
}

// previewRowOf is one preview row as shown: card numbers masked, the
// amount formatted in its currency ("full amount" for a zero amount: the
// provider's whole-transaction refund), the date Bacs will use with the
// date requested beside it when they differ.
func previewRowOf(row int, id, account, txRef, orderRef, description string, amt paybatch.Money, date, bacs time.Time) previewRow {
	m := paybatch.MaskCardNumbers
	pr := previewRow{Row: row, MerchantTxID: m(id), Account: m(account), TransactionRef: m(txRef), OrderRef: m(orderRef), Description: m(description)}
	if !amt.Currency.IsZero() {
		pr.Amount, pr.Currency = formatMoney(amt), amt.Currency.Code()
		if amt.Minor == 0 {
			pr.Amount = "full amount"
		}
	}
	if !date.IsZero() {
		pr.Date = formatDate(date)
		if !bacs.IsZero() {
			pr.Date = formatDate(bacs) + " (requested " + formatDate(date) + ")"
		}
	}
	return pr
}
