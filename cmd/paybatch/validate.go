package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gocarina/gocsv"
	"github.com/spf13/cobra"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/readers"
	"github.com/paybatch/paybatch/writers"
)

func newValidateCmd(e *env) *cobra.Command {
	var (
		kind, rejectsPath, sheet, mapping    string
		asJSON, decimalComma, acceptFormulas bool
	)
	cmd := &cobra.Command{
		Use:   "validate --kind KIND [--json] [--rejects PATH] [--sheet NAME] [--decimal-comma] [--mapping FILE] FILE...",
		Short: "Check a batch (CSV or XLSX) without sending anything",
		Long: `validate reads every row of the batch files, checks it for the kind given and
prints rows read, valid and rejected, with the count and exact total per
currency. When rows are rejected they go to rejects.csv beside the first file
(or --rejects PATH) with file, sheet, row (as your spreadsheet shows it),
column, value and reason, and the path is printed; a clean batch writes no
file. Card numbers are masked (first 6, last 4). Ids that differ only in
case are a warning. Nothing is submitted.

Columns (headers match ignoring case, spaces and punctuation; --mapping for others):
  refund, capture  terminal, transaction_reference_id, order_reference_id,
                   merchant_transaction_id, amount, currency
  void             terminal, transaction_reference_id, order_reference_id,
                   merchant_transaction_id
  dd-payment       mandate or auddis, merchant_transaction_id, amount,
                   collection_date [, currency (GBP), description, default_narrative]
  dd-credit        auddis or bank_account, merchant_transaction_id, amount,
                   collection_date (or credit_date), description [, default_narrative]

Mapping file (YAML):  columns: {"Cust Ref": merchant_transaction_id, "Due": collection_date}

Exit status: 0 every row valid, 1 some rows rejected, 2 a file cannot be used.`,
		Example: `  paybatch validate --kind refund refunds.csv
  paybatch validate --kind dd-payment --sheet Collections --json collections.xlsx
  paybatch validate --kind refund --decimal-comma --mapping headers.yaml --rejects /tmp/rejects.csv export.csv`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := paybatch.ParseKind(kind)
			if err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--kind: %w", err))
			}
			opts := readers.Options{Kind: k, Sheet: sheet, DecimalComma: decimalComma, AcceptFormulaValues: acceptFormulas, Rules: pipeline.RulesFor(k.Provider(), e.now)}
			if mapping != "" {
				f, err := os.Open(mapping)
				if err != nil {
					return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--mapping: %w", err))
				}
				opts.Aliases, err = readers.LoadMapping(f)
				f.Close()
				if err != nil {
					return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("--mapping %s: %w", mapping, err))
				}
			}
			rep, err := readers.Validate(cmd.Context(), args, opts)
			if errors.Is(err, context.Canceled) {
				return paybatch.WithKind(paybatch.ErrResumable, err)
			}
			if err != nil {
				return paybatch.WithKind(paybatch.ErrUsage, err)
			}
			if rejectsPath == "" {
				rejectsPath = filepath.Join(filepath.Dir(args[0]), "rejects.csv")
			}
			// rejects.csv only when there is a reject: a clean batch leaves
			// no file behind (nor replaces one)
			written := ""
			if len(rep.Rejects) > 0 {
				if err := writeRejects(rejectsPath, rep.Rejects); err != nil {
					return paybatch.WithKind(paybatch.ErrUsage, fmt.Errorf("writing rejects: %w", err))
				}
				written = rejectsPath
			}
			if asJSON {
				if err := writeValidateJSON(e.stdout, rep, written); err != nil {
					return err
				}
			} else {
				printValidateSummary(e.stdout, rep, written)
			}
			if rep.Rejected > 0 {
				return paybatch.WithKind(paybatch.ErrExceptions,
					fmt.Errorf("%d of %d rows rejected; fix them (listed in %s) and validate again", rep.Rejected, rep.Rows, rejectsPath))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "batch kind: refund, capture, void, dd-payment or dd-credit (required)")
	f.BoolVar(&asJSON, "json", false, "print the verdict as JSON")
	f.StringVar(&rejectsPath, "rejects", "", "where to write the rejected rows (default: rejects.csv beside the first file)")
	f.StringVar(&sheet, "sheet", "", "XLSX sheet to read (default: the first sheet)")
	f.BoolVar(&decimalComma, "decimal-comma", false, "amounts are written 1.234,56 (',' is the decimal mark)")
	f.StringVar(&mapping, "mapping", "", "YAML file mapping your column headers to paybatch fields")
	f.BoolVar(&acceptFormulas, "accept-formula-values", false, "read XLSX formula cells at the value the spreadsheet last computed (refused otherwise: it may be stale)")
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

// rejectLine is one row of rejects.csv. gocsv writes it: the file is small
// (one line per problem), so its reflection costs nothing here, unlike on the
// batch-reading hot path, which maps fields by hand.
type rejectLine struct {
	File   string `csv:"file" json:"file"`
	Sheet  string `csv:"sheet" json:"sheet"`
	Row    int    `csv:"row" json:"row"`
	Column string `csv:"column" json:"column"`
	Value  string `csv:"value" json:"value"`
	Reason string `csv:"reason" json:"reason"`
}

func rejectLines(rejects []paybatch.RowError, neutralise bool) []rejectLine {
	n := func(s string) string { return s }
	if neutralise {
		n = writers.NeutraliseCSV
	}
	out := make([]rejectLine, 0, len(rejects))
	for _, r := range rejects {
		out = append(out, rejectLine{
			File: n(r.Source.File), Sheet: n(r.Source.Sheet), Row: r.Source.Row,
			Column: n(r.Column), Value: n(paybatch.MaskCardNumbers(r.Value)), Reason: n(paybatch.MaskCardNumbers(r.Err.Error())),
		})
	}
	return out
}

func writeRejects(path string, rejects []paybatch.RowError) error {
	return writers.WriteFileAtomic(path, func(w io.Writer) error {
		lines := rejectLines(rejects, true)
		if len(lines) == 0 {
			_, err := io.WriteString(w, "file,sheet,row,column,value,reason\n")
			return err
		}
		return gocsv.Marshal(lines, w)
	})
}

type validateJSON struct {
	Rows        int               `json:"rows"`
	Valid       int               `json:"valid"`
	Rejected    int               `json:"rejected"`
	Rejects     []rejectLine      `json:"rejects"`
	Totals      map[string]string `json:"totals"`
	RejectsFile string            `json:"rejects_file,omitempty"` // where rejects.csv was written ("" when there was no reject)
	Warnings    []warningJSON     `json:"warnings,omitempty"`
}

type warningJSON struct {
	Rows    []rejectLine `json:"rows"` // file, sheet, row, column, value of each row concerned
	Message string       `json:"message"`
}

func warningsJSON(ws []readers.Warning) []warningJSON {
	var out []warningJSON
	for _, w := range ws {
		wj := warningJSON{Message: paybatch.MaskCardNumbers(w.Message)}
		for i, src := range w.Sources {
			wj.Rows = append(wj.Rows, rejectLine{File: src.File, Sheet: src.Sheet, Row: src.Row, Column: w.Column, Value: paybatch.MaskCardNumbers(w.Values[i])})
		}
		out = append(out, wj)
	}
	return out
}

func writeValidateJSON(w io.Writer, rep *readers.Report, rejectsFile string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(validateJSON{
		Rows: rep.Rows, Valid: rep.Valid, Rejected: rep.Rejected,
		Rejects: rejectLines(rep.Rejects, false), Totals: rep.Totals.Strings(),
		RejectsFile: rejectsFile, Warnings: warningsJSON(rep.Warnings),
	}); err != nil {
		return paybatch.WithKind(paybatch.ErrUsage, err)
	}
	return nil
}

func printValidateSummary(w io.Writer, rep *readers.Report, rejectsPath string) {
	for _, f := range rep.Files {
		fmt.Fprintf(w, "%s: %d rows (sha256 %s)\n", f.Path, f.Rows, f.SHA256[:12])
		if u := rep.Unknown[f.Path]; len(u) > 0 {
			q := make([]string, len(u))
			for i, h := range u {
				q[i] = fmt.Sprintf("%q", h)
			}
			fmt.Fprintf(w, "  columns not used for this kind (ignored): %s\n", strings.Join(q, ", "))
		}
	}
	fmt.Fprintf(w, "rows read: %d\nvalid:     %d\nrejected:  %d\n", rep.Rows, rep.Valid, rep.Rejected)
	codes := make([]string, 0, len(rep.Totals))
	for c := range rep.Totals {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  %s  %d rows  total %s\n", c, rep.Counts[c], rep.Totals[c].String())
	}
	if len(rep.Rejects) > 0 {
		const show = 10
		noun := "problems"
		if len(rep.Rejects) == 1 {
			noun = "problem"
		}
		fmt.Fprintf(w, "rejects (%d %s, all in %s):\n", len(rep.Rejects), noun, rejectsPath)
		for i, r := range rep.Rejects {
			if i == show {
				fmt.Fprintf(w, "  … and %d more\n", len(rep.Rejects)-show)
				break
			}
			fmt.Fprintf(w, "  %s\n", paybatch.MaskCardNumbers(r.Error()))
		}
		fmt.Fprintf(w, "rejects written to %s\n", rejectsPath)
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", paybatch.MaskCardNumbers(wn.Message))
	}
}
