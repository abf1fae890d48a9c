package web

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/readers"
)

type uploadData struct {
	Kinds     []paybatch.Kind
	MaxUpload string
}

func (s *Server) uploadPage(w http.ResponseWriter, r *http.Request, u User) error {
	return s.render(w, r, "upload", u, "Upload a batch", uploadData{Kinds: paybatch.Kinds, MaxUpload: humanBytes(s.cfg.MaxUpload)})
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// upload takes the form as a stream: the file part is written straight to
// the batch's directory under the size cap (http.MaxBytesReader), never held
// in memory, and then read by the same readers the CLI uses. The file
// name is kept for display only; the content decides what the file is.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, u User) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+64<<10)
	// mime/multipart reads its input 4 KB at a time: from a connection
	// that is a system call per 4 KB. Read ahead in large blocks instead
	// (≈ 50 ms less CPU for a 51 MB upload over loopback HTTP).
	r.Body = struct {
		io.Reader
		io.Closer
	}{bufio.NewReaderSize(r.Body, 256<<10), r.Body}
	mr, err := r.MultipartReader()
	if err != nil {
		return badInput("the upload form was not sent as multipart/form-data")
	}
	var kind, sheet, fileName string
	var tmp string
	var mapping []byte
	defer func() {
		if tmp != "" {
			os.Remove(tmp)
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return uploadReadError(err)
		}
		switch part.FormName() {
		case "kind":
			kind, err = smallField(part)
		case "sheet":
			sheet, err = smallField(part)
		case "file":
			fileName = part.FileName()
			tmp, err = s.spool(part)
		case "mapping":
			if part.FileName() != "" {
				mapping, err = readMapping(part)
			}
		}
		part.Close()
		if err != nil {
			return uploadReadError(err)
		}
	}
	k, err := paybatch.ParseKind(kind)
	if err != nil {
		return badInput("choose what the batch is: %v", err)
	}
	if tmp == "" || fileName == "" {
		return badInput("choose a file to upload")
	}
	b, err := s.importSpooled(r.Context(), u, k, fileName, sheet, tmp, mapping)
	tmp = "" // moved (or removed) by importSpooled
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/batches/%d", b.ID), http.StatusSeeOther)
	return nil
}

func uploadReadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return badInput("the upload was cut short (%v); send it again", err)
}

func smallField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, 257))
	if err != nil {
		return "", err
	}
	if len(b) > 256 {
		return "", badInput("form field %q is too long", p.FormName())
	}
	return strings.TrimSpace(string(b)), nil
}

// spool copies the uploaded file to a temporary file in the data directory.
func (s *Server) spool(p io.Reader) (string, error) {
	dir := filepath.Join(s.cfg.DataDir, "uploads")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".incoming-*")
	if err != nil {
		return "", err
	}
	_, err = copyOverlapped(f, p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// copyOverlapped is io.Copy with the writes on a goroutine of their own,
// so reading the next buffer (the multipart boundary scan of an upload)
// overlaps writing the last (≈ 50 ms of write system calls for a 50 MB
// upload). It returns the bytes written and the first error, a read's or
// a write's.
func copyOverlapped(dst io.Writer, src io.Reader) (int64, error) {
	const size, bufs = 1 << 20, 3
	full, free := make(chan []byte, bufs), make(chan []byte, bufs)
	for range bufs {
		free <- make([]byte, size)
	}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	var failed atomic.Bool
	go func() {
		var r result
		for b := range full {
			if r.err == nil {
				var k int
				k, r.err = dst.Write(b)
				r.n += int64(k)
				failed.Store(r.err != nil)
			}
			free <- b[:cap(b)]
		}
		done <- r
	}()
	var rerr error
	for rerr == nil && !failed.Load() {
		b := <-free
		n, err := io.ReadFull(src, b)
		if n > 0 {
			full <- b[:n]
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			rerr = io.EOF
		default:
			rerr = err
		}
	}
	close(full)
	r := <-done
	if rerr != nil && rerr != io.EOF {
		return r.n, rerr
	}
	return r.n, r.err // nil, or the write error that stopped the copy
}

// storedName makes a file name safe to keep on disk.
func storedName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if len(out) > 100 {
		out = out[len(out)-100:]
	}
	if out == "" {
		out = "batch"
	}
	return out
}

// ImportBatch stores a batch file for user u and validates it. The upload
// page and `serve --demo` both come through here. A file that cannot be
// used at all (not CSV/XLSX, damaged, encrypted, no header…) is refused
// with the readers' message and nothing is kept.
func (s *Server) ImportBatch(ctx context.Context, u User, k paybatch.Kind, fileName, sheet string, content io.Reader) (Batch, error) {
	tmp, err := s.spool(io.LimitReader(content, s.cfg.MaxUpload+1))
	if err != nil {
		return Batch{}, err
	}
	return s.importSpooled(ctx, u, k, fileName, sheet, tmp, nil)
}

// readMapping reads an uploaded header mapping (at most 64 KiB) and checks
// it with the readers' parser, the one `--mapping` uses.
func readMapping(p io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, 64<<10+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 64<<10 {
		return nil, badInput("the header mapping is larger than 64 KiB")
	}
	if _, err := readers.LoadMapping(bytes.NewReader(b)); err != nil {
		return nil, badInput("the header mapping cannot be used: %v", err)
	}
	return b, nil
}

// importSpooled moves a spooled upload into its batch's directory (a
// rename: the bytes are written once) and validates it; the spooled file is
// gone when it returns.
func (s *Server) importSpooled(ctx context.Context, u User, k paybatch.Kind, fileName, sheet, tmp string, mapping []byte) (Batch, error) {
	defer os.Remove(tmp)
	st, err := os.Stat(tmp)
	if err != nil {
		return Batch{}, err
	}
	if st.Size() > s.cfg.MaxUpload {
		return Batch{}, &http.MaxBytesError{Limit: s.cfg.MaxUpload}
	}
	id, err := s.store.NextBatchID(ctx)
	if err != nil {
		return Batch{}, err
	}
	dir := s.batchDir(id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return Batch{}, err
	}
	path := filepath.Join(dir, storedName(fileName))
	if _, err := os.Lstat(path); err == nil {
		return Batch{}, fmt.Errorf("batch %d: %s already exists: %w", id, storedName(fileName), ErrExists)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.RemoveAll(dir)
		return Batch{}, err
	}
	if err := os.Chmod(path, 0o640); err != nil {
		os.RemoveAll(dir)
		return Batch{}, err
	}
	b := Batch{ID: id, Kind: k, Provider: k.Provider(), FileName: fileName, Path: path, Sheet: sheet, Size: st.Size(),
		UploaderID: u.ID, Uploader: u.Name, UploadedAt: s.cfg.Now()}
	if mapping != nil {
		if err := os.WriteFile(mappingPath(b), mapping, 0o640); err != nil {
			os.RemoveAll(dir)
			return Batch{}, err
		}
		if err := b.loadMapping(); err != nil {
			os.RemoveAll(dir)
			return Batch{}, badInput("%v", err)
		}
	}
	if err := s.validate(ctx, &b); err != nil {
		os.RemoveAll(dir)
		_ = s.store.Audit(ctx, AuditEvent{User: u.Name, Action: "upload refused", Detail: fmt.Sprintf("%s: %v", fileName, err), At: s.cfg.Now()})
		return Batch{}, err
	}
	if err := s.store.CreateBatch(ctx, b); err != nil {
		os.RemoveAll(dir)
		return Batch{}, err
	}
	return b, nil
}

func (s *Server) batchDir(id int64) string {
	return filepath.Join(s.cfg.DataDir, "uploads", strconv.FormatInt(id, 10))
}

// fileError is a readers error with the server's path replaced by the
// name the user uploaded.
type fileError struct {
	msg string
	err error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

func (b *Batch) readerOptions(now func() time.Time, max int64) readers.Options {
	o := readers.Options{Kind: b.Kind, Sheet: b.Sheet, Rules: pipeline.RulesFor(b.Provider, now), MaxFileSize: max}
	o.Aliases = b.mapping
	return o
}

func mappingPath(b Batch) string { return filepath.Join(filepath.Dir(b.Path), "mapping.yaml") }

// loadMapping reads the header mapping uploaded with the batch (the CLI's
// --mapping format), if there was one, into b.
func (b *Batch) loadMapping() error {
	f, err := os.Open(mappingPath(*b))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := readers.LoadMapping(f)
	if err != nil {
		return fmt.Errorf("batch %d: the header mapping: %w", b.ID, err)
	}
	b.mapping = m
	return nil
}

// rejectLine is one problem, as stored beside the batch (rejects.jsonl) and
// shown on the page; the value and reason are already masked.
type rejectLine struct {
	Group  int    `json:"g"`
	Row    int    `json:"row"`
	Column string `json:"column"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// validate reads the stored file once, through readers.Validate — the
// CLI's validation — and fills in the batch's counts and summary. The same
// pass gathers what the approver needs besides the totals and the preview
// (previewPass: for a CSV, where each page starts in the upload; else a page
// file). Only when a row it saw turns out to repeat an id (known at the end)
// are the rows read again without it.
func (s *Server) validate(ctx context.Context, b *Batch) error {
	sheets, err := readers.Sheets(b.Path)
	if err != nil {
		return s.fileErr(b, err)
	}
	b.Summary.Sheets = sheets
	// One clock for the whole validation, kept with the preview: a page
	// read later from the upload is read as of this moment.
	at := s.cfg.Now()
	pv := s.newPreviewPass(b, at)
	fa := s.newFacts(ctx, b, at)
	opts := s.readerOptionsAt(*b, at)
	opts.Each = func(in paybatch.Instruction, pos readers.Position) error {
		bacs := s.bacsDate(in, fa.today)
		fa.add(in.Source.Row, in.MerchantTxID, in.Amount, !bacs.IsZero())
		return pv.add(in, pos, bacs)
	}
	rep, err := readers.Validate(ctx, []string{b.Path}, opts)
	if ferr := fa.finish(); err == nil {
		err = ferr
	}
	if err == nil {
		fa, err = pv.finish(ctx, rep, fa)
	}
	if err != nil {
		pv.abort()
		return s.fileErr(b, err)
	}
	f := rep.Files[0]
	b.SHA256, b.Rows, b.Valid, b.Rejected = f.SHA256, rep.Rows, rep.Valid, rep.Rejected
	if b.Sheet == "" && len(b.Summary.Sheets) > 0 {
		b.Sheet = b.Summary.Sheets[0]
	}
	sum := Summary{Sheets: b.Summary.Sheets, Unknown: rep.Unknown[b.Path]}
	codes := make([]string, 0, len(rep.Totals))
	for c := range rep.Totals {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		sum.Currencies = append(sum.Currencies, CurrencyTotal{Code: c, Rows: rep.Counts[c], Minor: rep.Totals[c].Minor})
	}
	lines := groupRejects(rep.Rejects, &sum, b.Path, b.FileName)
	if err := writeRejectLines(rejectsPath(*b), lines); err != nil {
		return err
	}
	if len(sum.Unknown) > 0 {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("Columns not used for a %s batch (ignored): %s", b.Kind, strings.Join(sum.Unknown, ", ")))
	}
	fa.summarise(&sum, rep)
	limits := s.limits(b.Provider)
	rate := limits.Submit.Min(limits.Overall)
	if ps := rate.PerSecond(); ps > 0 && b.Valid > 0 {
		eta := time.Duration(float64(b.Valid) / ps * float64(time.Second)).Round(time.Second)
		sum.ETA = fmt.Sprintf("about %s to send %s rows at %s (plus status polling)", max(eta, time.Second), groupInt(b.Valid), rate)
	}
	b.ApprovalsNeeded, sum.Threshold = s.approvalsNeeded(sum.Currencies)
	b.Summary = sum
	b.State = StateUploaded
	if b.Valid == 0 {
		b.State = StateInvalid
	}
	return nil
}

func previewPath(b Batch) string { return filepath.Join(filepath.Dir(b.Path), "preview.pages") }
func rejectsPath(b Batch) string { return filepath.Join(filepath.Dir(b.Path), "rejects.pages") }

// refilter rewrites the preview page file without the rows validation
// refused at the end (each copy of a repeated id; the rows of sheet), and
// gathers the facts again from it.
func (s *Server) refilter(ctx context.Context, b *Batch, rep *readers.Report, sheet string, at time.Time) (*facts, error) {
	old := previewPath(*b)
	tmp := old + ".all"
	if err := os.Rename(old, tmp); err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	os.Remove(old + ".idx")
	pw, err := createPageFile(old)
	if err != nil {
		return nil, err
	}
	fa := s.newFacts(ctx, b, at)
	var werr error
	err = eachRecord(tmp, func(rec []string) bool {
		row, _ := strconv.Atoi(rec[pvRow])
		if rep.IsRejected(paybatch.Source{File: b.Path, Sheet: sheet, Row: row}) {
			return true
		}
		if werr = fa.addRecord(rec); werr == nil {
			werr = pw.add(rec...)
		}
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		err = pw.close()
	} else {
		pw.abort()
	}
	if ferr := fa.finish(); err == nil {
		err = ferr
	}
	return fa, err
}

// The fields of a preview record, raw (masked and formatted when shown).
const (
	pvRow = iota
	pvID
	pvAccount
	pvTxRef
	pvOrderRef
	pvMinor    // "" when the row carries no amount
	pvCurrency // "" when the row carries no amount
	pvDate     // requested collection date, YYYY-MM-DD, or ""
	pvBacsDate // the date Bacs will use when it differs, or ""
	pvDescription
	pvFields
)

// bacsDate is the date Bacs will use for in's collection date when it
// differs from the date requested (zero otherwise).
func (s *Server) bacsDate(in paybatch.Instruction, today time.Time) time.Time {
	if in.CollectionDate.IsZero() {
		return time.Time{}
	}
	if d, moved, err := s.bacs.Collectable(in.CollectionDate, today); err == nil && moved {
		return d
	}
	return time.Time{}
}

// writePreview appends in's preview record (the pv* fields) to the page
// file, formatting the numbers in place: one row costs no allocation.
func writePreview(pw *pageWriter, in paybatch.Instruction, bacs time.Time) error {
	pw.start(pvFields)
	pw.int(int64(in.Source.Row))
	pw.field(in.MerchantTxID)
	pw.field(in.Account())
	pw.field(in.TransactionRef)
	pw.field(in.OrderRef)
	if in.Amount.Currency.IsZero() {
		pw.field("")
		pw.field("")
	} else {
		pw.int(in.Amount.Minor)
		pw.field(in.Amount.Currency.Code())
	}
	pw.date(in.CollectionDate)
	pw.date(bacs)
	pw.field(in.Description)
	return pw.finish()
}

// facts are what the approver needs besides the totals, gathered from the
// preview records: the ten largest amounts per currency, ids already sent
// from an earlier batch (the journal will not send them again) and
// collection dates Bacs will move. The ids stream to the journal, a chunk
// at a time, on a goroutine of its own while the file is read; it asks
// once, at the end (and not at all when it holds no other file's rows).
type facts struct {
	s     *Server
	b     *Batch
	today time.Time
	per   map[string][]LargeRow
	chunk []string
	moved int

	ids   chan []string
	done  chan struct{}
	sent  []string // first five, masked
	nSent int
	err   error
}

// newFacts gathers the facts of b's rows as of at (the validation's clock).
func (s *Server) newFacts(ctx context.Context, b *Batch, at time.Time) *facts {
	fa := &facts{s: s, b: b, today: smarterpay.Today(at), per: map[string][]LargeRow{},
		ids: make(chan []string, 2), done: make(chan struct{}), chunk: make([]string, 0, idChunk)}
	go func() {
		defer close(fa.done)
		fa.sent, fa.nSent, fa.err = s.alreadySent(ctx, b, func(yield func(string) bool) {
			for chunk := range fa.ids {
				for _, id := range chunk {
					if !yield(id) {
						return
					}
				}
			}
		})
		for range fa.ids {
			// drain what a failed lookup did not take
		}
	}()
	return fa
}

// idChunk is how many ids travel to the journal's goroutine at once.
const idChunk = 8192

// addRecord is add of a preview record read back from its page file.
func (fa *facts) addRecord(rec []string) error {
	row, err := strconv.Atoi(rec[pvRow])
	if err != nil {
		return err
	}
	var m paybatch.Money
	if rec[pvCurrency] != "" {
		if m.Currency, err = paybatch.ParseCurrency(rec[pvCurrency]); err != nil {
			return err
		}
		if m.Minor, err = strconv.ParseInt(rec[pvMinor], 10, 64); err != nil {
			return err
		}
	}
	fa.add(row, rec[pvID], m, rec[pvBacsDate] != "")
	return nil
}

// add takes one valid row: its id for the journal's question, its amount
// for the largest ten of its currency, and whether Bacs moves its date.
func (fa *facts) add(row int, id string, amount paybatch.Money, moved bool) {
	if moved {
		fa.moved++
	}
	if fa.chunk = append(fa.chunk, id); len(fa.chunk) == idChunk {
		fa.ids <- fa.chunk
		fa.chunk = make([]string, 0, idChunk)
	}
	if amount.Currency.IsZero() {
		return
	}
	c := amount.Currency.Code()
	l := fa.per[c]
	if len(l) == 10 && amount.Minor <= l[9].Minor {
		return
	}
	// A clone: the reader's cell strings share 32 KB blocks, and these few
	// stay for the batch's life.
	l = append(l, LargeRow{Row: row, MerchantTxID: strings.Clone(paybatch.MaskCardNumbers(id)), Code: c, Minor: amount.Minor})
	slices.SortStableFunc(l, func(x, y LargeRow) int { return cmp.Compare(y.Minor, x.Minor) })
	fa.per[c] = l[:min(len(l), 10)]
}

// finish asks the journal about the last ids and waits for its answers.
func (fa *facts) finish() error {
	if len(fa.chunk) > 0 {
		fa.ids <- fa.chunk
		fa.chunk = nil
	}
	close(fa.ids)
	<-fa.done
	return fa.err
}

func (fa *facts) summarise(sum *Summary, rep *readers.Report) {
	for _, c := range slices.Sorted(maps.Keys(fa.per)) {
		sum.Largest = append(sum.Largest, fa.per[c]...)
	}
	if fa.nSent > 0 {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("%s ids were already sent in an earlier batch (%s): they will not be sent again — the journal answers with what happened to them then.",
			groupInt(fa.nSent), strings.Join(fa.sent[:min(len(fa.sent), 5)], ", ")))
	}
	if fa.moved > 0 {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("%s collection dates are not collectable Bacs banking days (a weekend, a bank holiday, or inside the 3-day lead time): SmarterPay will use the next collectable day, shown in the preview beside the date requested.", groupInt(fa.moved)))
	}
	// Ids that differ only in case: the readers' warning, first five.
	var caseDups []string
	for _, w := range rep.Warnings {
		if len(caseDups) == 5 || len(w.Values) < 2 {
			continue
		}
		caseDups = append(caseDups, fmt.Sprintf("%s (row %d) and %s", paybatch.MaskCardNumbers(w.Values[1]), w.Sources[1].Row, paybatch.MaskCardNumbers(w.Values[0])))
	}
	if len(caseDups) > 0 {
		sum.Warnings = append(sum.Warnings, "Ids that differ only in upper/lower case (the provider may treat them as one): "+strings.Join(caseDups, "; ")+".")
	}
}

func (s *Server) fileErr(b *Batch, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), b.Path, b.FileName)
	msg = strings.ReplaceAll(msg, s.cfg.DataDir, "")
	if !errors.Is(err, paybatch.ErrUnusableFile) && !errors.Is(err, paybatch.ErrMissingColumn) {
		// A file the readers could not finish (a read error deep in a
		// damaged workbook) is still the file's problem, not the server's.
		err = fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	return &fileError{msg: paybatch.MaskCardNumbers(msg), err: err}
}

// approvalsNeeded applies the per-currency thresholds.
func (s *Server) approvalsNeeded(curs []CurrencyTotal) (int, string) {
	var over []string
	for _, c := range curs {
		if t, ok := s.cfg.Thresholds[c.Code]; ok && c.Minor > t {
			over = append(over, fmt.Sprintf("the %s total %s is over the %s %s threshold", c.Code, formatMinor(c.Code, c.Minor), c.Code, formatMinor(c.Code, t)))
		}
	}
	if len(over) > 0 {
		return 2, "Two approvers needed: " + strings.Join(over, "; ") + "."
	}
	if len(s.cfg.Thresholds) == 0 {
		return 1, "One approver needed (no two-approver thresholds are set)."
	}
	var rules []string
	for _, c := range slices.Sorted(maps.Keys(s.cfg.Thresholds)) {
		rules = append(rules, c+" "+formatMinor(c, s.cfg.Thresholds[c]))
	}
	return 1, "One approver needed: no currency total is over its two-approver threshold (" + strings.Join(rules, ", ") + ")."
}

// Every reject names the sentinel it wraps; groups are column × sentinel,
// largest first, each with what to do about it.
var rejectKinds = []struct {
	err    error
	reason string
	fix    string
}{
	{paybatch.ErrDuplicateID, "the same merchant_transaction_id appears more than once", "Give each row its own id; every copy is held back so none is sent twice."},
	{paybatch.ErrBadAmount, "the amount cannot be read exactly", "Write digits and one decimal point, with no more decimals than the currency has (JPY 0, GBP 2, KWD 3); paybatch never rounds."},
	{paybatch.ErrBadCurrency, "the currency is not an ISO 4217 code", "Use a three-letter code such as GBP, EUR or USD."},
	{paybatch.ErrCurrencyMismatch, "the currency does not match", "Use the currency of the original transaction."},
	{paybatch.ErrBadDate, "the date cannot be used", "Write the date as YYYY-MM-DD, today or later."},
	{paybatch.ErrMissingField, "a required value is empty", "Fill in the cell."},
	{paybatch.ErrBadField, "the value is not in the form the provider accepts", "Correct the value as the reason on each row says."},
}

func groupRejects(errs []paybatch.RowError, sum *Summary, path, display string) []rejectLine {
	idx := map[string]int{}
	lines := make([]rejectLine, 0, len(errs))
	for _, re := range errs {
		reason, fix := "other problem", "See the reason on each row."
		for _, k := range rejectKinds {
			if errors.Is(re.Err, k.err) {
				reason, fix = k.reason, k.fix
				break
			}
		}
		key := re.Column + "\x00" + reason
		g, ok := idx[key]
		if !ok {
			g = len(sum.Groups)
			idx[key] = g
			sum.Groups = append(sum.Groups, RejectGroup{Key: key, Column: re.Column, Reason: reason, Fix: fix})
		}
		sum.Groups[g].Rows++
		msg := strings.ReplaceAll(re.Err.Error(), path, display)
		lines = append(lines, rejectLine{Group: g, Row: re.Source.Row, Column: re.Column,
			Value: paybatch.MaskCardNumbers(re.Value), Reason: paybatch.MaskCardNumbers(msg)})
	}
	// Largest group first; renumber lines to the new order.
	order := make([]int, len(sum.Groups))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(sum.Groups[b].Rows, sum.Groups[a].Rows) })
	rank := make([]int, len(order))
	groups := make([]RejectGroup, len(order))
	for newI, oldI := range order {
		rank[oldI] = newI
		groups[newI] = sum.Groups[oldI]
	}
	sum.Groups = groups
	for i := range lines {
		lines[i].Group = rank[lines[i].Group]
	}
	slices.SortStableFunc(lines, func(a, b rejectLine) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Row, b.Row))
	})
	return lines
}

func writeRejectLines(path string, lines []rejectLine) error {
	pw, err := createPageFile(path)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if err := pw.add(strconv.Itoa(l.Group), strconv.Itoa(l.Row), l.Column, l.Value, l.Reason); err != nil {
			pw.abort()
			return err
		}
	}
	return pw.close()
}

func rejectLineOf(rec []string) rejectLine {
	var l rejectLine
	if len(rec) == 5 {
		l.Group, _ = strconv.Atoi(rec[0])
		l.Row, _ = strconv.Atoi(rec[1])
		l.Column, l.Value, l.Reason = rec[2], rec[3], rec[4]
	}
	return l
}

// readRejectLines streams the stored rejects until fn returns false.
func readRejectLines(path string, fn func(l rejectLine) bool) error {
	return eachRecord(path, func(rec []string) bool { return fn(rejectLineOf(rec)) })
}

// rejectPage is page p (1-based) of the stored rejects.
func rejectPage(path string, p int) ([]rejectLine, error) {
	recs, err := readPage(path, p)
	out := make([]rejectLine, len(recs))
	for i, r := range recs {
		out[i] = rejectLineOf(r)
	}
	return out, err
}

// alreadySent returns (up to five of) the ids among ids that the journal
// holds from another file, masked, and how many there are; it takes every
// id.
func (s *Server) alreadySent(ctx context.Context, b *Batch, ids iter.Seq[string]) ([]string, int, error) {
	if s.cfg.Journal == nil {
		for range ids {
		}
		return nil, 0, nil
	}
	first, n, err := s.cfg.Journal.IDsFromOtherFiles(ctx, b.Path, ids, 5)
	if err != nil {
		return nil, 0, err
	}
	for i := range first {
		first[i] = paybatch.MaskCardNumbers(first[i])
	}
	return first, n, nil
}
