// Package writers turns a reconciliation into the files finance opens: the
// XLSX report (WriteXLSX), per-category CSV exports (WriteCSV) and the
// e-mail that delivers them (SendReport). Every file is written atomically
// (WriteFileAtomic).
//
// Typical use from a command:
//
//	rep := writers.Report{Run: run, Summary: sum, Exceptions: exc, Matched: m, Rejected: rej}
//	if err := writers.WriteXLSX(ctx, "report.xlsx", rep, writers.XLSXOptions{}); err != nil { … }
//	paths, err := writers.WriteCSV(ctx, dir, rep) // ranges the sequences again
//	cfg, err := writers.MailConfigFromEnv(e.getenv, emailTo)
//	err = writers.SendReport(ctx, cfg, writers.MailReport{Run: run, Summary: sum, XLSXPath: "report.xlsx"})
//
// Guarantees: amounts are exact (numeric cells hold exactly Money.String(),
// see amount.go); no cell is ever a formula and text a spreadsheet would
// evaluate is quote-prefixed; card numbers in free text are masked; memory
// stays flat however many rows are streamed.
package writers
