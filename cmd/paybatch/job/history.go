package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
)

// PastRun is one job run as `paybatch history` lists it: what the journal
// recorded (inputs, steps, report path) and, once the report was written,
// its headline numbers (from the summary kept beside the report).
type PastRun struct {
	ID       string             `json:"id"`
	Started  time.Time          `json:"started"`
	Finished *time.Time         `json:"finished,omitempty"`
	State    string             `json:"state"` // "finished", or the step it stopped before
	Inputs   []journal.RunInput `json:"inputs"`
	Rows     int                `json:"rows"` // input rows, all inputs
	Report   string             `json:"report,omitempty"`
	Emailed  *time.Time         `json:"emailed,omitempty"`
	// From the run's summary; nil when its report was never written or the
	// summary file is gone.
	IDs           *int64            `json:"ids,omitempty"`
	Matched       *int64            `json:"matched,omitempty"`
	Exceptions    *int64            `json:"exceptions,omitempty"`
	LedgerTotals  map[string]string `json:"ledger_totals,omitempty"`
	ProviderTotal map[string]string `json:"provider_totals,omitempty"`
}

// SummaryPath is where a run's summary (JSON) is kept beside its report.
func SummaryPath(reportPath string) string {
	return strings.TrimSuffix(reportPath, ".xlsx") + ".summary.json"
}

// History lists the runs recorded in the journal at path (a DuckDB file
// or a postgres:// URL), newest first (limit <= 0: all). The journal must
// exist; while a run holds a DuckDB file the error is of kind
// paybatch.ErrLocked (a PostgreSQL journal answers while runs write it).
func History(ctx context.Context, path string, limit int) ([]PastRun, error) {
	if _, err := os.Stat(path); !postgres.IsURL(path) && errors.Is(err, fs.ErrNotExist) {
		return nil, paybatch.WithKind(paybatch.ErrInput, fmt.Errorf("no journal at %s (give the job's journal, or --config with the job file)", path))
	}
	j, err := openJournal(ctx, path, nil)
	if errors.Is(err, paybatch.ErrLocked) {
		if p, ok, perr := journal.ReadProgress(path); perr == nil && ok && p.Server != "" {
			return nil, paybatch.WithKind(paybatch.ErrLocked, fmt.Errorf("paybatch serve (pid %d) holds journal %s: its batches and their history are at %s", p.PID, path, p.Server))
		}
	}
	if err != nil {
		return nil, err
	}
	defer j.Close()
	runs, err := j.Runs(ctx, journal.RunQuery{Limit: limit})
	if err != nil {
		return nil, journalFailed(path, err)
	}
	out := make([]PastRun, 0, len(runs))
	for _, rr := range runs {
		p := PastRun{ID: rr.ID, Started: rr.Started, Inputs: rr.Inputs, Report: rr.ReportPath, State: "finished"}
		if p.Inputs == nil {
			p.Inputs = []journal.RunInput{}
		}
		for _, in := range rr.Inputs {
			p.Rows += in.Rows
		}
		if rr.Done() {
			p.Finished = &rr.Finished
		} else {
			p.State = nextStep(rr)
		}
		if !rr.Emailed.IsZero() {
			p.Emailed = &rr.Emailed
		}
		if rr.ReportPath != "" {
			readRunSummary(&p, SummaryPath(rr.ReportPath))
		}
		out = append(out, p)
	}
	return out, nil
}

// readRunSummary fills p's numbers from the summary JSON at path, if any.
func readRunSummary(p *PastRun, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var s struct {
		Categories map[string]struct {
			Count int64 `json:"count"`
		} `json:"categories"`
		LedgerTotals   map[string]string `json:"ledger_totals"`
		ProviderTotals map[string]string `json:"provider_totals"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return
	}
	var ids, matched int64
	for c, ct := range s.Categories {
		ids += ct.Count
		if c == string(paybatch.CatMatched) {
			matched = ct.Count
		}
	}
	exc := ids - matched
	p.IDs, p.Matched, p.Exceptions = &ids, &matched, &exc
	p.LedgerTotals, p.ProviderTotal = s.LedgerTotals, s.ProviderTotals
}
