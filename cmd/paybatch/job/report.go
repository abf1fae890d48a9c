package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/reconcile"
	"github.com/paybatch/paybatch/writers"
)

// Outputs says what to write once a reconciliation has run. Empty fields
// are skipped. Both `paybatch reconcile` and Run write through it.
type Outputs struct {
	XLSX          string // the workbook
	CSVDir        string // one CSV per category
	ParquetDir    string // one Parquet file per non-empty category
	JSON          string // the summary, as JSON, to this file
	EmailTo       []string
	MaxAttachment int64 // 0 → the mail library's default
	// XLSXMatchedRows caps the matched rows in the workbook (0: every
	// one); exceptions are always all in it (writers.XLSXOptions.MatchedRows).
	XLSXMatchedRows int64
}

// WriteReport writes the report, the exports and the e-mail, in that order,
// so the mail can attach the finished workbook. It returns the files written.
func WriteReport(ctx context.Context, d Deps, r *reconcile.Reconciler, run paybatch.RunInfo, sum paybatch.Summary, rejects []paybatch.RowError, o Outputs) ([]string, error) {
	run = withLines(r, run)
	written, err := writeFiles(ctx, r, run, sum, rejects, o)
	if err != nil {
		return written, err
	}
	return written, mailReport(ctx, d, run, sum, o)
}

// writeFiles writes the workbook and the exports o asks for. written names
// every file put in place, also when it fails.
func writeFiles(ctx context.Context, r *reconcile.Reconciler, run paybatch.RunInfo, sum paybatch.Summary, rejects []paybatch.RowError, o Outputs) (written []string, err error) {
	run = withLines(r, run)
	report := func() writers.Report {
		// Fresh iterators each time: every writer reads them once.
		return writers.Report{
			Run: run, Summary: sum,
			Exceptions: r.Rows(ctx, exceptionCategories()...),
			Matched:    r.Rows(ctx, paybatch.CatMatched),
			Rejected:   rowErrors(rejects),
		}
	}
	// With the workbook of every row, the CSV files are written from the
	// rows the workbook reads (one read of the rows for both); otherwise
	// from a read of their own (writers.WriteCSV). Not by DuckDB's COPY
	// (byte for byte the same, each line built by SQL macros; now the
	// reference of reconcile's and this command's tests): at 1M ids it
	// cost 4.6 cpu-s and 9 s on its one thread against ≈ 1.1 cpu-s for the
	// rows read and written as lines in Go (#19, BENCHMARKS.md "Full
	// report", session 8).
	csvFromRows := o.XLSX != "" && o.CSVDir != "" && o.XLSXMatchedRows == 0
	// DuckDB writes the Parquet files (COPY, on one thread: reconcile's
	// threads.go) while Go writes the workbook from the rows: the two
	// outputs on the machine's two cores instead of one after the other.
	type parquetDone struct {
		files []string
		err   error
	}
	var parquet chan parquetDone
	pctx, stopParquet := context.WithCancel(ctx)
	if o.ParquetDir != "" && o.XLSX != "" {
		parquet = make(chan parquetDone, 1)
		go func() {
			files, err := r.ExportParquet(pctx, o.ParquetDir)
			parquet <- parquetDone{files, err}
		}()
	}
	// a return before the Parquet files are asked for (an error) stops
	// their export and waits for it; the files it put in place are named
	defer func() {
		stopParquet()
		if parquet != nil {
			written = append(written, (<-parquet).files...)
		}
	}()
	if o.XLSX != "" {
		rep := report()
		var csvx *writers.CSVExport
		var excDone, matchedDone bool
		if csvFromRows {
			var err error
			if csvx, err = writers.CreateCSVExport(o.CSVDir); err != nil {
				return written, fmt.Errorf("csv export: %w", err)
			}
			rep.Exceptions, rep.Matched = teeCSV(rep.Exceptions, csvx, &excDone), teeCSV(rep.Matched, csvx, &matchedDone)
		}
		if err := writers.WriteXLSX(ctx, o.XLSX, rep, writers.XLSXOptions{MatchedRows: o.XLSXMatchedRows}); err != nil {
			if csvx != nil {
				csvx.Abort()
			}
			return written, fmt.Errorf("report %s: %w", o.XLSX, err)
		}
		written = append(written, o.XLSX)
		if csvx != nil {
			if !excDone || !matchedDone { // the workbook stopped reading: the files would miss rows
				csvx.Abort()
				return written, errors.New("csv export: the workbook did not read every row")
			}
			files, err := csvx.Commit(rowErrors(rejects))
			written = append(written, files...)
			if err != nil {
				return written, fmt.Errorf("csv export: %w", err)
			}
		}
	}
	if o.CSVDir != "" && !csvFromRows {
		files, err := writers.WriteCSV(ctx, o.CSVDir, report())
		written = append(written, files...)
		if err != nil {
			return written, fmt.Errorf("csv export: %w", err)
		}
	}
	if o.ParquetDir != "" {
		var files []string
		var err error
		if parquet != nil {
			d := <-parquet
			parquet = nil
			files, err = d.files, d.err
		} else {
			files, err = r.ExportParquet(ctx, o.ParquetDir)
		}
		if err != nil {
			return written, fmt.Errorf("parquet export: %w", err)
		}
		written = append(written, files...)
	}
	if o.JSON != "" {
		if err := writers.WriteFileAtomic(o.JSON, func(w io.Writer) error { return EncodeJSON(w, sum) }); err != nil {
			return written, fmt.Errorf("json %s: %w", o.JSON, err)
		}
		written = append(written, o.JSON)
	}
	return written, nil
}

// mailReport e-mails the workbook at o.XLSX to o.EmailTo (nothing when
// there is no recipient) and says where it went.
// MailReport e-mails the report at o.XLSX with its summary to o.EmailTo
// (nothing when there is none) — what `run` sends, for the web server.
func MailReport(ctx context.Context, d Deps, run paybatch.RunInfo, sum paybatch.Summary, o Outputs) error {
	return mailReport(ctx, d, run, sum, o)
}

func mailReport(ctx context.Context, d Deps, run paybatch.RunInfo, sum paybatch.Summary, o Outputs) error {
	if len(o.EmailTo) == 0 {
		return nil
	}
	if d.Mail == nil {
		return paybatch.WithKind(paybatch.ErrConfig, errors.New("e-mail: no SMTP settings given"))
	}
	mc, err := d.Mail(o.EmailTo)
	if err != nil {
		return paybatch.WithKind(paybatch.ErrConfig, fmt.Errorf("e-mail: %w", err))
	}
	if o.MaxAttachment > 0 {
		mc.MaxAttachment = o.MaxAttachment
	}
	if err := writers.SendReport(ctx, mc, writers.MailReport{Run: run, Summary: sum, XLSXPath: o.XLSX}); err != nil {
		return fmt.Errorf("e-mail: %w", err)
	}
	if d.Say != nil {
		d.Say(fmt.Sprintf("e-mailed the report to %s via %s", strings.Join(mc.To, ", "), mc.Server()))
	}
	return nil
}

// withLines completes run from the reconciliation: the ledger's and the
// provider side's line counts as Run read them, and the run id.
func withLines(r *reconcile.Reconciler, run paybatch.RunInfo) paybatch.RunInfo {
	ledger, provider := r.Lines()
	if run.Ledger != nil {
		l := *run.Ledger
		l.Rows = int(ledger)
		run.Ledger = &l
	}
	if run.ProviderSide != nil {
		p := *run.ProviderSide
		p.Rows = int(provider)
		run.ProviderSide = &p
	}
	if run.ID == "" {
		run.ID = run.DefaultID()
	}
	return run
}

// EncodeJSON writes v as indented JSON, the form every --json output takes.
func EncodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func exceptionCategories() []paybatch.Category {
	var out []paybatch.Category
	for _, c := range paybatch.Categories {
		if c != paybatch.CatMatched {
			out = append(out, c)
		}
	}
	return out
}

// teeCSV is rows, each row also written to csvx as it passes; a failed
// write ends the sequence with its error. *done says the rows were read to
// their end. It may be read once: a second read would write the rows twice.
func teeCSV(rows iter.Seq2[paybatch.ReconRow, error], csvx *writers.CSVExport, done *bool) iter.Seq2[paybatch.ReconRow, error] {
	started := false
	return func(yield func(paybatch.ReconRow, error) bool) {
		if started {
			yield(paybatch.ReconRow{}, errors.New("csv export: the rows were read twice"))
			return
		}
		started = true
		for row, err := range rows {
			if err == nil {
				if werr := csvx.Write(row); werr != nil {
					yield(paybatch.ReconRow{}, fmt.Errorf("csv export: %w", werr))
					return
				}
			}
			if !yield(row, err) {
				return
			}
		}
		*done = true
	}
}

func rowErrors(errs []paybatch.RowError) func(yield func(paybatch.RowError, error) bool) {
	return func(yield func(paybatch.RowError, error) bool) {
		for _, re := range errs {
			if !yield(re, nil) {
				return
			}
		}
	}
}

// Exceptions counts the ids of a summary that are not matched.
func Exceptions(sum paybatch.Summary) int64 {
	var total int64
	for _, ct := range sum.Categories {
		total += ct.Count
	}
	return total - sum.Categories[paybatch.CatMatched].Count
}
