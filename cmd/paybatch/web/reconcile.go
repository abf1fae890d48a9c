package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/readers"
	"github.com/paybatch/paybatch/reconcile"
	"github.com/paybatch/paybatch/writers"
)

// reconciled is what the last reconciliation of a batch found, kept beside
// its upload (reconciled.json) for the batch page.
type reconciled struct {
	Ledger  string           `json:"ledger"` // the ledger's name as uploaded or configured
	By      string           `json:"by"`
	At      time.Time        `json:"at"`
	Summary paybatch.Summary `json:"summary"`
}

func reconciledPath(b Batch) string { return filepath.Join(filepath.Dir(b.Path), "reconciled.json") }
func exportsDir(b Batch) string     { return filepath.Join(filepath.Dir(b.Path), "exports") }

// reconcileBatch reconciles the batch's journal rows with the ledger at
// ledger and writes report.xlsx and the exports (CSV and Parquet per
// category, the summary as JSON) beside the upload — the reconcile and
// report code `paybatch run` uses. The batch's rows are copied out of the
// journal first (the server holds the journal; reconcile attaches a file
// read-only). One reconciliation runs at a time.
func (s *Server) reconcileBatch(ctx context.Context, b Batch, ledger, ledgerName, by string) (reconciled, error) {
	s.reconMu.Lock()
	defer s.reconMu.Unlock()
	dir := filepath.Dir(b.Path)
	snap := filepath.Join(dir, "journal-snapshot.duckdb")
	db := filepath.Join(dir, "reconcile.duckdb")
	for _, p := range []string{snap, snap + ".wal", snap + ".lock", db, db + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return reconciled{}, err
		}
	}
	// The snapshot is a journal of its own (made by the journal package,
	// with the export views reconcile reads) holding this batch's rows with
	// their latest states, and its rejects.
	if err := s.cfg.Journal.Snapshot(ctx, snap, b.Path); err != nil {
		return reconciled{}, err
	}
	defer os.Remove(snap)
	// Rows: the report below reads every row, so Run reads the files once,
	// into the rows' tables, as `paybatch run` and `reconcile --out` do
	// (without it Run summed in a pass of its own and the report read and
	// checked both files a second time).
	r, err := reconcile.Open(ctx, reconcile.Options{Path: db, Rows: true})
	if err != nil {
		return reconciled{}, err
	}
	defer func() {
		r.Close()
		os.Remove(db)
	}()
	if err := r.LoadJournal(ctx, snap); err != nil {
		return reconciled{}, err
	}
	if err := r.LoadLedger(ctx, ledger, ""); err != nil {
		return reconciled{}, &fileError{msg: paybatch.MaskCardNumbers(strings.ReplaceAll(strings.ReplaceAll(err.Error(), ledger, ledgerName), s.cfg.DataDir, "")),
			err: fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)}
	}
	sum, err := r.Run(ctx)
	if err != nil {
		return reconciled{}, err
	}
	ledgerSum, err := readers.FileSHA256(ctx, ledger)
	if err != nil {
		return reconciled{}, err
	}
	run := s.runInfo(b)
	run.Ledger = &paybatch.InputFile{Path: ledgerName, SHA256: ledgerSum}
	var rejects []paybatch.RowError
	if err := readRejectLines(rejectsPath(b), func(l rejectLine) bool {
		rejects = append(rejects, paybatch.RowError{Source: paybatch.Source{File: b.FileName, Sheet: b.Sheet, Row: l.Row},
			Column: l.Column, Value: l.Value, Err: errors.New(l.Reason)})
		return true
	}); err != nil {
		return reconciled{}, err
	}
	ex := exportsDir(b)
	if err := os.RemoveAll(ex); err != nil {
		return reconciled{}, err
	}
	o := job.Outputs{XLSX: s.reportPath(b), CSVDir: filepath.Join(ex, "csv"), ParquetDir: filepath.Join(ex, "parquet"), JSON: filepath.Join(ex, "summary.json")}
	if _, err := job.WriteReport(ctx, s.jobDeps(), r, run, sum, rejects, o); err != nil {
		return reconciled{}, err
	}
	rc := reconciled{Ledger: ledgerName, By: by, At: s.cfg.Now(), Summary: sum}
	if err := writers.WriteFileAtomic(reconciledPath(b), func(w io.Writer) error { return job.EncodeJSON(w, rc) }); err != nil {
		return reconciled{}, err
	}
	return rc, nil
}

// runInfo describes the batch as the report's Run block does.
func (s *Server) runInfo(b Batch) paybatch.RunInfo {
	return paybatch.RunInfo{ID: "batch-" + strconv.FormatInt(b.ID, 10), Provider: b.Provider, Kind: b.Kind, Started: b.UploadedAt,
		Inputs: []paybatch.InputFile{{Path: b.FileName, SHA256: b.SHA256, Rows: b.Rows}}}
}

func (s *Server) jobDeps() job.Deps {
	return job.Deps{Now: s.cfg.Now, Log: s.log, Version: "serve", Mail: s.cfg.Mail}
}

func loadReconciled(b Batch) (*reconciled, error) {
	data, err := os.ReadFile(reconciledPath(b))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rc reconciled
	if err := json.Unmarshal(data, &rc); err != nil {
		return nil, fmt.Errorf("batch %d: reconciled.json: %w", b.ID, err)
	}
	return &rc, nil
}

// reconcileView is the reconciliation section of a batch page.
type reconcileView struct {
	Done       *reconciled
	Rows       []categoryRow
	Chart      []chartBar
	ChartH     int
	MatchRate  string
	Difference []string
	Exports    []exportLink
	Configured string // the configured ledger's name ("" when none)
	CanRun     bool   // the user may reconcile and e-mail
	MailTo     string // the configured recipients ("" when none)
}

type categoryRow struct {
	Category string
	Label    string
	Count    int64
	Totals   []string
}

// chartBar is one bar of the server-drawn SVG chart (no script, no inline
// style: the CSP allows neither).
type chartBar struct {
	Label       string
	Count       int64
	Y, W, TextY int
	Class       string
}

type exportLink struct{ Name, URL string }

// categoryLabels say each category in a sentence.
var categoryLabels = map[paybatch.Category]string{
	paybatch.CatRejectedByProvider:  "refused by the provider (nothing executed)",
	paybatch.CatRejectedBeforeSend:  "not sent (refused by validation)",
	paybatch.CatDuplicateAtProvider: "executed more than once at the provider",
	paybatch.CatDuplicateInLedger:   "more than once in the ledger",
	paybatch.CatMissingAtProvider:   "in the ledger, never executed",
	paybatch.CatMissingInLedger:     "executed, not in the ledger",
	paybatch.CatPending:             "no final status yet",
	paybatch.CatCurrencyMismatch:    "currency differs",
	paybatch.CatStatusMismatch:      "ledger expects done; the provider declined or failed it",
	paybatch.CatAmountMismatch:      "amount differs",
	paybatch.CatMatched:             "matched",
}

func (s *Server) reconcileSection(b Batch, u User) (*reconcileView, error) {
	if b.State != StateDone && b.State != StateExceptions {
		return nil, nil
	}
	v := &reconcileView{CanRun: allows(u.Role, permReconcile), MailTo: strings.Join(s.cfg.EmailTo, ", ")}
	if s.cfg.Ledger != "" {
		v.Configured = filepath.Base(s.cfg.Ledger)
	}
	rc, err := loadReconciled(b)
	if err != nil || rc == nil {
		return v, err
	}
	v.Done = rc
	sum := rc.Summary
	var most int64
	for _, c := range paybatch.Categories {
		most = max(most, sum.Categories[c].Count)
	}
	const barH, gap, width = 22, 6, 360
	for i, c := range paybatch.Categories {
		ct := sum.Categories[c]
		row := categoryRow{Category: string(c), Label: categoryLabels[c], Count: ct.Count}
		for _, code := range slices.Sorted(maps.Keys(ct.Totals)) {
			row.Totals = append(row.Totals, formatMoney(ct.Totals[code])+" "+code)
		}
		v.Rows = append(v.Rows, row)
		w := 0
		if most > 0 {
			w = int(ct.Count * width / most)
		}
		if ct.Count > 0 {
			w = max(w, 2)
		}
		class := "bar-exception"
		if c == paybatch.CatMatched {
			class = "bar-matched"
		}
		y := i * (barH + gap)
		v.Chart = append(v.Chart, chartBar{Label: string(c), Count: ct.Count, Y: y, W: w, TextY: y + barH - 6, Class: class})
	}
	v.ChartH = len(paybatch.Categories) * (barH + gap)
	v.MatchRate = fmt.Sprintf("%.1f %%", sum.MatchRate*100)
	diff := sum.Difference()
	for _, code := range slices.Sorted(maps.Keys(diff)) {
		v.Difference = append(v.Difference, formatMoney(diff[code])+" "+code)
	}
	v.Exports = exportLinks(b)
	return v, nil
}

// exportLinks lists the report's files: the workbook, then the CSV and
// Parquet files per category, then the JSON summary.
func exportLinks(b Batch) []exportLink {
	base := fmt.Sprintf("/batches/%d/", b.ID)
	out := []exportLink{{Name: "report.xlsx", URL: base + "report.xlsx"}}
	for _, sub := range []string{"csv", "parquet"} {
		es, _ := os.ReadDir(filepath.Join(exportsDir(b), sub))
		for _, e := range es {
			if e.Type().IsRegular() {
				out = append(out, exportLink{Name: e.Name(), URL: base + "exports/" + e.Name()})
			}
		}
	}
	if _, err := os.Stat(filepath.Join(exportsDir(b), "summary.json")); err == nil {
		out = append(out, exportLink{Name: "summary.json", URL: base + "exports/summary.json"})
	}
	return out
}

// reconcile reconciles a finished batch with an uploaded ledger, or the
// configured one when none is uploaded.
func (s *Server) reconcile(w http.ResponseWriter, r *http.Request, u User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	if b.State != StateDone && b.State != StateExceptions {
		return fmt.Errorf("%w: batch %d is %s; it is reconciled once sending has finished", ErrStateChanged, b.ID, b.State.Label())
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		return badInput("the reconcile form was not sent as multipart/form-data")
	}
	ledger, name := "", ""
	defer func() {
		if ledger != "" && ledger != s.cfg.Ledger {
			os.Remove(ledger)
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
		if part.FormName() == "ledger" && part.FileName() != "" {
			name = part.FileName()
			f, err := os.CreateTemp(filepath.Dir(b.Path), "ledger-*-"+storedName(name))
			if err == nil {
				_, err = io.Copy(f, part)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				ledger = f.Name()
			}
			if err != nil {
				part.Close()
				return uploadReadError(err)
			}
		}
		part.Close()
	}
	if ledger == "" {
		if s.cfg.Ledger == "" {
			return badInput("choose a ledger file to reconcile with (no ledger is configured on this server)")
		}
		ledger, name = s.cfg.Ledger, filepath.Base(s.cfg.Ledger)
	}
	if _, err := s.reconcileBatch(r.Context(), b, ledger, name, u.Name); err != nil {
		_ = s.store.Audit(r.Context(), AuditEvent{BatchID: b.ID, User: u.Name, Action: "reconcile failed", Detail: paybatch.MaskCardNumbers(err.Error()), At: s.cfg.Now()})
		return err
	}
	if err := s.store.Audit(r.Context(), AuditEvent{BatchID: b.ID, User: u.Name, Action: "reconciled and report written", Detail: "against ledger " + name, At: s.cfg.Now()}); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/batches/%d#reconcile", b.ID), http.StatusSeeOther)
	return nil
}

// email sends the batch's report to the configured recipients, through the
// mail code `paybatch run` uses.
func (s *Server) email(w http.ResponseWriter, r *http.Request, u User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	if len(s.cfg.EmailTo) == 0 || s.cfg.Mail == nil {
		return badInput("no e-mail recipients are configured on this server (serve --email-to and the SMTP settings)")
	}
	rc, err := loadReconciled(b)
	if err != nil {
		return err
	}
	if rc == nil {
		return fmt.Errorf("batch %d has no report yet: reconcile it first: %w", b.ID, ErrNotFound)
	}
	run := s.runInfo(b)
	run.Ledger = &paybatch.InputFile{Path: rc.Ledger}
	o := job.Outputs{XLSX: s.reportPath(b), EmailTo: s.cfg.EmailTo}
	if err := job.MailReport(r.Context(), s.jobDeps(), run, rc.Summary, o); err != nil {
		_ = s.store.Audit(r.Context(), AuditEvent{BatchID: b.ID, User: u.Name, Action: "e-mail failed", Detail: paybatch.MaskCardNumbers(err.Error()), At: s.cfg.Now()})
		return fmt.Errorf("the report could not be e-mailed: %w", err)
	}
	if err := s.store.Audit(r.Context(), AuditEvent{BatchID: b.ID, User: u.Name, Action: "report e-mailed", Detail: "to " + strings.Join(s.cfg.EmailTo, ", "), At: s.cfg.Now()}); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/batches/%d#reconcile", b.ID), http.StatusSeeOther)
	return nil
}

// export serves one file of the report's exports, by name: only a name the
// exports directory lists is served (never a path from the request).
func (s *Server) export(w http.ResponseWriter, r *http.Request, _ User) error {
	b, err := s.loadBatch(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	for _, l := range exportLinks(b)[1:] {
		if l.Name != name {
			continue
		}
		p := filepath.Join(exportsDir(b), "summary.json")
		ctype := "application/json"
		switch filepath.Ext(name) {
		case ".csv":
			p, ctype = filepath.Join(exportsDir(b), "csv", name), "text/csv; charset=utf-8"
		case ".parquet":
			p, ctype = filepath.Join(exportsDir(b), "parquet", name), "application/vnd.apache.parquet"
		}
		return serveFile(w, r, p, downloadName(b, name), ctype)
	}
	return fmt.Errorf("batch %d has no export %q (reconcile it first): %w", b.ID, name, ErrNotFound)
}
