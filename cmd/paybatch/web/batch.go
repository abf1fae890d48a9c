package web

import (
	"cmp"
	"context"
	"slices"

	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
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
	b, err := s.store.Batch(r.Context(), id)
	if err != nil {
		return Batch{}, err
	}
	return b, b.loadMapping()
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
	Reconcile *reconcileView
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
	lines, err := rejectPage(rejectsPath(b), d.RejPager.Page)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if l.Group < len(d.Groups) {
			d.Groups[l.Group].Lines = append(d.Groups[l.Group].Lines, l)
		}
	}

	if b.State.sent() {
		if err := s.outcomes(ctx, r, b, &d); err != nil {
			return err
		}
	} else if b.Valid > 0 {
		d.PrevPager = newPager(r, "preview", b.Valid, pageSize)
		if d.Preview, err = s.preview(ctx, b, d.PrevPager.Page); err != nil {
			return err
		}
	}
	if b.State.sent() || b.State == StateApproved {
		d.Progress = s.send.view(b)
	}
	if _, err := os.Stat(s.reportPath(b)); err == nil {
		d.HasReport = true
	}
	if d.Reconcile, err = s.reconcileSection(b, u); err != nil {
		return err
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

// outcomeFilters are the choices of the outcomes filter.
var outcomeFilters = []string{"all", "succeeded", "failed", "declined", "pending", "other"}

// outcomeTerms are the journal queries whose union is each filter's rows
// (a row is in exactly one class besides "all"; the tests' outcomeClass
// names it).
func outcomeTerms(class string) []journal.Query {
	st := func(s ...paybatch.State) []paybatch.State { return s }
	oc := func(o ...paybatch.Outcome) []paybatch.Outcome { return o }
	switch class {
	case "succeeded":
		return []journal.Query{{States: st(paybatch.StateFinal), Outcomes: oc(paybatch.OutcomeSucceeded)}}
	case "declined":
		return []journal.Query{{States: st(paybatch.StateDeclined)}}
	case "failed":
		return []journal.Query{{States: st(paybatch.StateFinal), Outcomes: oc(paybatch.OutcomeFailed, paybatch.OutcomeCancelled)},
			{States: st(paybatch.StateRejected, paybatch.StateFailed, paybatch.StateConflict)}}
	case "pending":
		return []journal.Query{{States: st(paybatch.StateAccepted, paybatch.StatePending, paybatch.StateSending)}}
	case "other":
		return []journal.Query{{States: st(paybatch.StateFinal), Outcomes: oc(paybatch.OutcomePending, "")}}
	}
	return []journal.Query{{}}
}

// journalRow is one journaled row of a batch (the latest state, even
// mid-run).
type journalRow struct {
	Row                                 int
	MerchantTxID                        string
	Amount                              paybatch.Money
	State                               paybatch.State
	Outcome                             paybatch.Outcome
	ProviderStatus, ProviderID, Problem string
}

// outcomes fills in one page of the batch's outcomes: keyset pages over the
// journal (rows after ?after=ROW, in row order), so the last page of a
// million rows costs what the first does. The counts per filter are
// counted once the batch is finished and kept.
func (s *Server) outcomes(ctx context.Context, r *http.Request, b Batch, d *batchData) error {
	q := r.URL.Query()
	d.Filter = q.Get("outcome")
	if !slices.Contains(outcomeFilters, d.Filter) {
		d.Filter = "all"
	}
	d.Filters = outcomeFilters
	after, _ := strconv.Atoi(q.Get("after"))
	page, _ := strconv.Atoi(q.Get("opage"))
	page = max(page, 1)
	if after <= 0 {
		after, page = 0, 1
	}
	counts, err := s.outcomeCounts(ctx, b)
	if err != nil {
		return err
	}
	d.OutCounts = counts
	rows, next, err := s.outcomePage(ctx, b, d.Filter, after, pageSize)
	if err != nil {
		return err
	}
	for _, row := range rows {
		d.Outcomes = append(d.Outcomes, outcomeOf(row))
	}
	pg := pager{Page: page, Pages: page, From: (page-1)*pageSize + 1, To: (page-1)*pageSize + len(rows), Total: -1}
	if len(rows) == 0 {
		pg.From = 0
	}
	link := func(after, n int) string {
		v := url.Values{"outcome": {d.Filter}}
		if after > 0 {
			v.Set("after", strconv.Itoa(after))
			v.Set("opage", strconv.Itoa(n))
		}
		return r.URL.Path + "?" + v.Encode() + "#outcomes"
	}
	if next > 0 {
		pg.Next, pg.Pages = link(next, page+1), page+1
	}
	if page > 1 {
		pg.First = link(0, 1)
	}
	if counts != nil {
		pg.Total = counts[d.Filter]
		pg.Pages = max(1, (pg.Total+pageSize-1)/pageSize)
	}
	d.OutPager = pg
	return nil
}

// outcomePage returns up to n rows of class after source row after, and
// the row to continue after (0 at the end). Each term of the class is one
// query; their rows are merged in row order. With the batch's outcome
// index (a finished batch, counted: outcomeIndexOf) a term's page is one
// bounded read, or none for a term with no rows; without it, a keyset page.
func (s *Server) outcomePage(ctx context.Context, b Batch, class string, after, n int) ([]journalRow, int, error) {
	if s.cfg.Journal == nil {
		return nil, 0, nil
	}
	x := s.outcomeIndexOf(b)
	var rows []*journal.Row
	for ti, q := range outcomeTerms(class) {
		q.SourceFile, q.AfterRow, q.Limit = b.Path, after, n+1
		pb, ok := x.pageBounds(termKey{class, ti}, n)
		if ok {
			// The rows after `after` that fill a page lie up to this row:
			// one bounded read, none when there are no more.
			through, more := pb.Through(after)
			if !more {
				continue
			}
			q.ThroughRow = through
		}
		rs, err := s.cfg.Journal.Rows(ctx, q)
		if err == nil && q.ThroughRow > 0 && q.ThroughRow < pb.Last && len(rs) <= n {
			// Fewer rows than the bounds promise: the rows changed since
			// they were counted (by a process the server does not see).
			// Count again, and read the keyset page.
			s.dropOutcomeIndex(b.ID, x)
			q.ThroughRow = 0
			rs, err = s.cfg.Journal.Rows(ctx, q)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("journal rows of batch %d: %w", b.ID, err)
		}
		rows = append(rows, rs...)
	}
	slices.SortStableFunc(rows, func(x, y *journal.Row) int { return cmp.Compare(x.Source.Row, y.Source.Row) })
	next := 0
	if len(rows) > n {
		rows = rows[:n]
		next = rows[n-1].Source.Row
	}
	out := make([]journalRow, len(rows))
	for i, r := range rows {
		out[i] = journalRowOf(r)
	}
	return out, next, nil
}

// outcomeCounts is the batch's rows per filter once it is finished and
// counted (outcomeIndexOf); nil while it is being sent (the progress says
// how far it is) or counted.
func (s *Server) outcomeCounts(ctx context.Context, b Batch) (map[string]int, error) {
	x := s.outcomeIndexOf(b)
	if x == nil {
		return nil, nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.counts, nil
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

func journalRowOf(r *journal.Row) journalRow {
	jr := journalRow{Row: r.Source.Row, MerchantTxID: r.MerchantTxID, State: r.State,
		Outcome: r.Outcome, ProviderStatus: r.ProviderStatus, ProviderID: r.ProviderID, Problem: r.Problem}
	if r.Amount.Minor != 0 {
		jr.Amount = r.Amount
	}
	return jr
}

// eachJournalRow streams the batch's journaled rows in row order, a
// keyset page at a time (memory bounded whatever the batch size).
func (s *Server) eachJournalRow(ctx context.Context, b Batch, fn func(journalRow) error) error {
	if s.cfg.Journal == nil {
		return nil
	}
	for after := 0; ; {
		rs, err := s.cfg.Journal.Rows(ctx, journal.Query{SourceFile: b.Path, AfterRow: after, Limit: 5000})
		if err != nil {
			return fmt.Errorf("journal rows of batch %d: %w", b.ID, err)
		}
		for _, r := range rs {
			if err := fn(journalRowOf(r)); err != nil {
				return err
			}
		}
		if len(rs) < 5000 {
			return nil
		}
		after = rs[len(rs)-1].Source.Row
	}
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
