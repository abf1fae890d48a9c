package web

import (
	"context"

	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/readers"
)

func batchID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("batch %q: %w", r.PathValue("id"), ErrNotFound)
	}
	return id, nil
}

func (s *Server) loadBatch(r *http.Request) (Batch, error) {
	id, err := batchID(r)
	if err != nil {
		return Batch{}, err
	}
	return s.store.Batch(r.Context(), id)
}

// previewRow is one row as it will be sent.
type previewRow struct {
	Row                      int
	MerchantTxID             string
	Account                  string // terminal, mandate, AUDDIS or bank account
	TransactionRef, OrderRef string
	Amount                   string
	Currency                 string
	Date                     string
	Description              string
}

// outcomeRow is one journaled row after sending.
type outcomeRow struct {
	Row          int
	MerchantTxID string
	Amount       string
	Currency     string
	State        string
	Outcome      string
	Status       string
	Problem      string
}

type groupView struct {
	RejectGroup
	Lines []rejectLine
}

type batchData struct {
	Batch      Batch
	Groups     []groupView
	RejPager   pager
	Preview    []previewRow
	PrevPager  pager
	SmartRetry bool

	Approvals []Approval
	Audit     []AuditEvent

	CanSubmit, CanDiscard, CanApprove, CanChooseSheet, CanResume bool
	IsUploader                                                   bool
	ApproveNote                                                  string

	Progress  *progressView
	Outcomes  []outcomeRow
	OutPager  pager
	Filter    string
	Filters   []string
	OutCounts map[string]int
	HasReport bool
}

func (d batchData) refresh() bool {
	return d.Batch.State == StateSending || d.Batch.State == StateApproved
}

func (s *Server) batchPage(w http.ResponseWriter, r *http.Request, u User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	d := batchData{Batch: b, SmartRetry: b.Provider == paybatch.SmartRetry, IsUploader: u.ID == b.UploaderID}
	d.CanSubmit = b.State == StateUploaded && u.ID == b.UploaderID && allows(u.Role, permUpload)
	d.CanDiscard = d.CanSubmit
	d.CanChooseSheet = d.CanSubmit && len(b.Summary.Sheets) > 1
	if b.State == StateAwaiting && allows(u.Role, permApprove) {
		if u.ID == b.UploaderID {
			d.ApproveNote = "You uploaded this batch, so another approver must decide on it."
		} else {
			d.CanApprove = true
		}
	}
	d.CanResume = b.State == StateStopped && allows(u.Role, permApprove)
	if d.Approvals, err = s.store.Approvals(ctx, b.ID); err != nil {
		return err
	}
	for _, a := range d.Approvals {
		if a.UserID == u.ID && d.CanApprove {
			d.CanApprove, d.ApproveNote = false, "You have approved this batch; it needs another approver."
		}
	}
	if d.Audit, err = s.store.AuditTrail(ctx, b.ID); err != nil {
		return err
	}

	// Rejects, grouped by reason, one page at a time.
	d.RejPager = newPager(r, "rejects", b.sumRejectLines(), pageSize)
	d.Groups = make([]groupView, len(b.Summary.Groups))
	for i, g := range b.Summary.Groups {
		d.Groups[i].RejectGroup = g
	}
	from, to := d.RejPager.offset(pageSize), d.RejPager.offset(pageSize)+pageSize
	err = readRejectLines(filepath.Join(filepath.Dir(b.Path), "rejects.jsonl"), func(i int, l rejectLine) bool {
		if i >= to {
			return false
		}
		if i >= from && l.Group < len(d.Groups) {
			d.Groups[l.Group].Lines = append(d.Groups[l.Group].Lines, l)
		}
		return true
	})
	if err != nil {
		return err
	}

	if b.State.sent() {
		if err := s.outcomes(ctx, r, b, &d); err != nil {
			return err
		}
	} else if b.Valid > 0 {
		d.PrevPager = newPager(r, "preview", b.Valid, pageSize)
		if d.Preview, err = s.preview(ctx, b, d.PrevPager.offset(pageSize), pageSize); err != nil {
			return err
		}
	}
	if b.State.sent() || b.State == StateApproved {
		d.Progress = s.send.view(b)
	}
	if _, err := os.Stat(s.reportPath(b)); err == nil {
		d.HasReport = true
	}
	return s.render(w, r, "batch", u, fmt.Sprintf("Batch %d", b.ID), d)
}

// sent reports whether rows of the batch may be in the journal.
func (st State) sent() bool {
	switch st {
	case StateSending, StateStopped, StateDone, StateExceptions:
		return true
	}
	return false
}

func (b Batch) sumRejectLines() int {
	n := 0
	for _, g := range b.Summary.Groups {
		n += g.Rows
	}
	return n
}

// preview reads the valid rows offset..offset+n as they will be sent. It
// re-reads the file through the readers, so what is shown is what the
// engine will read.
func (s *Server) preview(ctx context.Context, b Batch, offset, n int) ([]previewRow, error) {
	rejected := map[int]bool{}
	if err := readRejectLines(filepath.Join(filepath.Dir(b.Path), "rejects.jsonl"), func(_ int, l rejectLine) bool {
		rejected[l.Row] = true
		return true
	}); err != nil {
		return nil, err
	}
	rb, err := readers.Open(b.Path, b.readerOptions(s.cfg.Now, s.cfg.MaxUpload))
	if err != nil {
		return nil, s.fileErr(&b, err)
	}
	defer rb.Close()
	var out []previewRow
	i := 0
	for in, err := range rb.All(ctx) {
		var re *paybatch.RowError
		if errors.As(err, &re) {
			continue
		}
		if err != nil {
			return nil, s.fileErr(&b, err)
		}
		if rejected[in.Source.Row] {
			continue
		}
		if i >= offset {
			out = append(out, s.previewOf(in))
			if len(out) == n {
				break
			}
		}
		i++
	}
	return out, nil
}

// previewOf is a row as it will be sent; for SmarterPay the date is the
// one Bacs will use (the next collectable banking day, in London), with the
// requested date beside it when they differ.
func (s *Server) previewOf(in paybatch.Instruction) previewRow {
	m := paybatch.MaskCardNumbers
	p := previewRow{Row: in.Source.Row, MerchantTxID: m(in.MerchantTxID), Account: m(in.Account()),
		TransactionRef: m(in.TransactionRef), OrderRef: m(in.OrderRef), Description: m(in.Description)}
	if !in.Amount.Currency.IsZero() {
		p.Amount, p.Currency = formatMoney(in.Amount), in.Amount.Currency.Code()
		if in.Amount.Minor == 0 {
			p.Amount = "full amount"
		}
	}
	if !in.CollectionDate.IsZero() {
		p.Date = formatDate(in.CollectionDate)
		if d, moved, err := s.bacs.Collectable(in.CollectionDate, smarterpay.Today(s.cfg.Now())); err == nil && moved {
			p.Date = formatDate(d) + " (requested " + formatDate(in.CollectionDate) + ")"
		}
	}
	return p
}

// outcomeFilters are the choices of the outcomes filter.
var outcomeFilters = []string{"all", "succeeded", "failed", "declined", "pending", "other"}

// journalRow is one journaled row of a batch, as the journal's export view
// shows it (the latest state, even mid-run).
type journalRow struct {
	Row                                 int
	MerchantTxID                        string
	Amount                              paybatch.Money
	State                               paybatch.State
	Outcome                             paybatch.Outcome
	ProviderStatus, ProviderID, Problem string
}

func outcomeClass(r journalRow) string {
	switch {
	case r.State == paybatch.StateFinal && r.Outcome == paybatch.OutcomeSucceeded:
		return "succeeded"
	case r.State == paybatch.StateDeclined:
		return "declined"
	case r.State == paybatch.StateFinal && (r.Outcome == paybatch.OutcomeFailed || r.Outcome == paybatch.OutcomeCancelled):
		return "failed"
	case r.State == paybatch.StateRejected, r.State == paybatch.StateFailed, r.State == paybatch.StateConflict:
		return "failed"
	case r.State == paybatch.StateAccepted, r.State == paybatch.StatePending, r.State == paybatch.StateSending:
		return "pending"
	}
	return "other"
}

func (s *Server) outcomes(ctx context.Context, r *http.Request, b Batch, d *batchData) error {
	rows, err := s.journalRows(ctx, b)
	if err != nil {
		return err
	}
	d.Filter = r.URL.Query().Get("outcome")
	if d.Filter == "" {
		d.Filter = "all"
	}
	d.Filters = outcomeFilters
	d.OutCounts = map[string]int{"all": len(rows)}
	var kept []journalRow
	for _, row := range rows {
		c := outcomeClass(row)
		d.OutCounts[c]++
		if d.Filter == "all" || d.Filter == c {
			kept = append(kept, row)
		}
	}
	d.OutPager = newPager(r, "opage", len(kept), pageSize)
	from := d.OutPager.offset(pageSize)
	for _, row := range kept[from:min(from+pageSize, len(kept))] {
		d.Outcomes = append(d.Outcomes, outcomeOf(row))
	}
	return nil
}

func outcomeOf(row journalRow) outcomeRow {
	m := paybatch.MaskCardNumbers
	o := outcomeRow{Row: row.Row, MerchantTxID: m(row.MerchantTxID), State: string(row.State),
		Outcome: string(row.Outcome), Status: m(row.ProviderStatus), Problem: m(row.Problem)}
	if !row.Amount.Currency.IsZero() {
		o.Amount, o.Currency = formatMoney(row.Amount), row.Amount.Currency.Code()
	}
	return o
}

// journalRows reads the batch's rows from the journal's export view
// (journal_export: the documented read-only face of the journal).
func (s *Server) journalRows(ctx context.Context, b Batch) ([]journalRow, error) {
	if s.cfg.Journal == nil {
		return nil, nil
	}
	rows, err := s.cfg.Journal.Rows(ctx, journal.Query{SourceFile: b.Path})
	if err != nil {
		return nil, fmt.Errorf("journal rows of batch %d: %w", b.ID, err)
	}
	out := make([]journalRow, 0, len(rows))
	for _, r := range rows {
		jr := journalRow{Row: r.Source.Row, MerchantTxID: r.MerchantTxID, State: r.State,
			Outcome: r.Outcome, ProviderStatus: r.ProviderStatus, ProviderID: r.ProviderID, Problem: r.Problem}
		if r.Amount.Minor != 0 {
			jr.Amount = r.Amount
		}
		out = append(out, jr)
	}
	return out, nil
}

// chooseSheet validates the batch again with another sheet of its workbook.
func (s *Server) chooseSheet(w http.ResponseWriter, r *http.Request, u User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	if b.UploaderID != u.ID {
		return fmt.Errorf("%w: only the person who uploaded batch %d changes it", ErrForbidden, b.ID)
	}
	if err := r.ParseForm(); err != nil {
		return badInput("the form could not be read")
	}
	sheet := r.PostForm.Get("sheet")
	found := false
	for _, sh := range b.Summary.Sheets {
		found = found || sh == sheet
	}
	if !found {
		return badInput("the workbook has no sheet %q", sheet)
	}
	if b.State != StateUploaded && b.State != StateInvalid {
		return ErrStateChanged
	}
	b.Sheet = sheet
	if err := s.validate(r.Context(), &b); err != nil {
		return err
	}
	if err := s.store.Revalidate(r.Context(), b); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/batches/%d", b.ID), http.StatusSeeOther)
	return nil
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, u User) error {
	id, err := batchID(r)
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return badInput("the form could not be read")
	}
	validOnly := r.PostForm.Get("valid_only") == "yes"
	detail := "all rows valid"
	if validOnly {
		detail = "send the valid rows only (rejected rows are not sent)"
	}
	if _, err := s.store.Submit(r.Context(), id, u.ID, validOnly, AuditEvent{User: u.Name, Action: "submitted for approval", Detail: detail, At: s.cfg.Now()}); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/batches/%d", id), http.StatusSeeOther)
	return nil
}

func (s *Server) discard(w http.ResponseWriter, r *http.Request, u User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	if b.UploaderID != u.ID {
		return fmt.Errorf("%w: only the person who uploaded batch %d discards it", ErrForbidden, b.ID)
	}
	if _, err := s.store.Transition(r.Context(), b.ID, []State{StateUploaded, StateInvalid}, StateCancelled, "discarded by its uploader",
		AuditEvent{User: u.Name, Action: "discarded", At: s.cfg.Now()}); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, u User) error {
	return s.decide(w, r, u, true)
}
func (s *Server) reject(w http.ResponseWriter, r *http.Request, u User) error {
	return s.decide(w, r, u, false)
}

// decide records an approver's decision. Whether it starts the send is
// decided by the store, in one transaction: a double click, or two
// approvers at the same moment, start one submission.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, u User, approve bool) error {
	id, err := batchID(r)
	if err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return badInput("the form could not be read")
	}
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	if !approve && comment == "" {
		return badInput("say why the batch is rejected: the uploader reads the comment")
	}
	if len(comment) > 2000 {
		return badInput("the comment is longer than 2,000 characters")
	}
	d, err := s.store.Decide(r.Context(), id, Approval{BatchID: id, UserID: u.ID, User: u.Name, Approve: approve, Comment: comment, At: s.cfg.Now()})
	if err != nil {
		return err
	}
	if d.Started {
		s.send.enqueue(d.Batch.ID)
	}
	http.Redirect(w, r, fmt.Sprintf("/batches/%d", id), http.StatusSeeOther)
	return nil
}

// resume sends a stopped batch again (after the credential or the outage
// was fixed). The journal makes it safe: rows already sent are not sent
// again.
func (s *Server) resume(w http.ResponseWriter, r *http.Request, u User) error {
	id, err := batchID(r)
	if err != nil {
		return err
	}
	if _, err := s.store.Transition(r.Context(), id, []State{StateStopped}, StateApproved, "",
		AuditEvent{User: u.Name, Action: "resumed", Detail: "sending again; rows already sent are not sent twice", At: s.cfg.Now()}); err != nil {
		return err
	}
	s.send.enqueue(id)
	http.Redirect(w, r, fmt.Sprintf("/batches/%d", id), http.StatusSeeOther)
	return nil
}
