package journal

import (
	"context"
	"time"
)

// RunLog records each job run step by step, so that "a run is done when its
// report is delivered" can be checked and resumed, and `paybatch history`
// can list past runs.
type RunLog interface {
	// StartRun records a run and the inputs it took in. Starting an id
	// that exists is an error.
	StartRun(ctx context.Context, r RunStart) error
	// MarkRun records that a run reached step at time at; detail is the
	// report's path for StepReportWritten (ignored otherwise). Marking a
	// step again keeps the first time.
	MarkRun(ctx context.Context, id string, step Step, at time.Time, detail string) error
	// Run returns one run (ErrNoRun when there is none).
	Run(ctx context.Context, id string) (RunRecord, error)
	// Runs returns runs newest first; limit <= 0 returns every one.
	// Unfinished keeps only runs with no finished time.
	Runs(ctx context.Context, q RunQuery) ([]RunRecord, error)
}

// Step is one milestone of a run.
type Step string

const (
	StepSubmitted     Step = "submitted"
	StepReconciled    Step = "reconciled"
	StepReportWritten Step = "report_written"
	StepEmailed       Step = "emailed"
	StepFinished      Step = "finished"
)

// RunStart is what is known when a run begins.
type RunStart struct {
	ID      string
	Started time.Time
	Inputs  []RunInput
}

// RunInput is one file a run read.
type RunInput struct {
	Path   string
	SHA256 string
	Rows   int
}

// RunQuery selects run records.
type RunQuery struct {
	Limit      int
	Unfinished bool
}

// RunRecord is one run as the journal knows it; a zero time is a step not
// reached.
type RunRecord struct {
	ID            string
	Started       time.Time
	Inputs        []RunInput
	Submitted     time.Time
	Reconciled    time.Time
	ReportWritten time.Time
	ReportPath    string
	Emailed       time.Time
	Finished      time.Time
}

// Done reports whether the run reached its last step.
func (r RunRecord) Done() bool { return !r.Finished.IsZero() }
