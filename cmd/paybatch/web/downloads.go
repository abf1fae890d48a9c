package web

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/writers"
)

// downloadName is <batch-id>-<date>-<what>, e.g. batch-12-2026-12-03-report.xlsx.
func downloadName(b Batch, what string) string {
	return fmt.Sprintf("batch-%d-%s-%s", b.ID, b.UploadedAt.UTC().Format("2006-01-02"), what)
}

func attachment(w http.ResponseWriter, name, ctype string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
}

// rejectsCSV is every reject of the batch with the fix, neutralised for
// spreadsheets and masked like the page.
func (s *Server) rejectsCSV(w http.ResponseWriter, r *http.Request, _ User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	attachment(w, downloadName(b, "rejects.csv"), "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	n := writers.NeutraliseCSV
	_ = cw.Write([]string{"file", "sheet", "row", "column", "value", "reason", "fix"})
	err = readRejectLines(rejectsPath(b), func(l rejectLine) bool {
		fix := ""
		if l.Group < len(b.Summary.Groups) {
			fix = b.Summary.Groups[l.Group].Fix
		}
		return cw.Write([]string{n(b.FileName), n(b.Sheet), strconv.Itoa(l.Row), n(l.Column), n(l.Value), n(l.Reason), n(fix)}) == nil
	})
	cw.Flush()
	if err != nil {
		s.log.Error("rejects.csv", "batch", b.ID, "err", err)
	}
	return nil
}

// outcomesCSV is every journaled row of the batch and where it ended.
func (s *Server) outcomesCSV(w http.ResponseWriter, r *http.Request, _ User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	if !b.State.sent() {
		return fmt.Errorf("batch %d has not been sent, so it has no outcomes yet: %w", b.ID, ErrNotFound)
	}
	attachment(w, downloadName(b, "outcomes.csv"), "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	n := writers.NeutraliseCSV
	_ = cw.Write([]string{"row", "merchant_transaction_id", "amount", "currency", "state", "outcome", "provider_status", "provider_id", "problem"})
	err = s.eachJournalRow(r.Context(), b, func(row journalRow) error {
		o := outcomeOf(row)
		amount := ""
		if !row.Amount.Currency.IsZero() {
			amount = row.Amount.String()
		}
		return cw.Write([]string{strconv.Itoa(o.Row), n(o.MerchantTxID), amount, o.Currency, o.State, o.Outcome, n(o.Status),
			n(paybatch.MaskCardNumbers(row.ProviderID)), n(o.Problem)})
	})
	cw.Flush()
	if err != nil {
		s.log.Error("outcomes.csv", "batch", b.ID, "err", err)
	}
	return nil
}

func (s *Server) reportXLSX(w http.ResponseWriter, r *http.Request, _ User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	err = serveFile(w, r, s.reportPath(b), downloadName(b, "report.xlsx"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("batch %d has no report yet (it is written after sending, when a ledger is configured): %w", b.ID, ErrNotFound)
	}
	return err
}

// serveFile serves the file at path as a download called name.
func serveFile(w http.ResponseWriter, r *http.Request, path, name, ctype string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	attachment(w, name, ctype)
	http.ServeContent(w, r, "", st.ModTime(), f)
	return nil
}

// original is the file exactly as uploaded (its SHA-256 is on the page).
func (s *Server) original(w http.ResponseWriter, r *http.Request, _ User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	attachment(w, downloadName(b, storedName(b.FileName)), "application/octet-stream")
	http.ServeContent(w, r, "", b.UploadedAt, f)
	return nil
}

// events streams the batch's progress as server-sent events until the
// batch is finished or stopped; the page reloads then. Without JavaScript
// the page refreshes itself instead.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ User) error {
	id, err := batchID(r)
	if err != nil {
		return err
	}
	if _, err := s.store.Batch(r.Context(), id); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := s.store.Batch(r.Context(), id)
		if err != nil {
			return nil
		}
		v := s.send.view(b)
		// Only a batch on its way out changes by itself: for any other
		// state one event says where it stands and the stream ends.
		v.Finished = b.State != StateSending && b.State != StateApproved
		data, _ := json.Marshal(v)
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		if v.Finished {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
		}
	}
}
