package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/robfig/cron/v3"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal/postgres"
)

// scheduled is one job file `serve` runs on a cron schedule.
type scheduled struct {
	spec, path string
	sched      cron.Schedule
}

// parseSchedules reads --schedule values, "CRON=JOBFILE" (five-field cron,
// or @daily, @every 1h …). Each job file is loaded now, so a bad one stops
// the server at start rather than at 02:15. A job whose journal is the
// server's own DuckDB file runs on the journal the server holds (see
// runScheduled); a PostgreSQL journal, the server's or another, is shared.
func parseSchedules(e *env, values []string) ([]scheduled, error) {
	var out []scheduled
	for _, v := range values {
		spec, path, ok := strings.Cut(v, "=")
		spec, path = strings.TrimSpace(spec), strings.TrimSpace(path)
		if !ok || spec == "" || path == "" {
			return nil, fmt.Errorf("--schedule %q: want CRON=JOBFILE, e.g. \"15 2 * * *=/etc/paybatch/refunds.yaml\"", v)
		}
		sched, err := cron.ParseStandard(spec)
		if err != nil {
			return nil, fmt.Errorf("--schedule %q: %w", v, err)
		}
		if _, err := loadScheduled(e, path); err != nil {
			return nil, fmt.Errorf("--schedule %q: %w", v, err)
		}
		out = append(out, scheduled{spec: spec, path: path, sched: sched})
	}
	return out, nil
}

// startSchedules runs each job through job.Run — what `paybatch run` does —
// at its times, one job at a time in this process: a job still running
// when its next time comes is skipped, never started twice, and no two
// jobs of the server race for a journal's lock. stop waits for a job in
// progress to be interrupted (it resumes from its journal at the next
// time).
func startSchedules(ctx context.Context, e *env, jobs []scheduled, own ownJournal) (stop func()) {
	if len(jobs) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	var one sync.Mutex // one job at a time
	for _, j := range jobs {
		c.Schedule(j.sched, cron.FuncJob(func() {
			one.Lock()
			defer one.Unlock()
			if ctx.Err() != nil {
				return
			}
			runScheduled(ctx, e, j, own)
		}))
		e.log.Info("serve: scheduled", "job", j.path, "cron", j.spec)
	}
	c.Start()
	return sync.OnceFunc(func() {
		cancel()
		<-c.Stop().Done()
	})
}

// loadScheduled loads a scheduled job file as `paybatch run` does: without
// a journal: in it, $PAYBATCH_JOURNAL_URL names the journal.
func loadScheduled(e *env, path string) (*job.Plan, error) {
	plan, err := job.LoadPlan(path)
	if err != nil {
		return nil, err
	}
	if u := e.getenv(job.JournalURLVar); u != "" && !plan.JournalSet {
		plan.Journal = u
	}
	return plan, nil
}

// ownJournal is the server's journal, for jobs that name it.
type ownJournal struct {
	loc  string // as the server opened it (an absolute DuckDB path, or a URL)
	j    job.HeldJournal
	turn sync.Locker // held by the server's sends too (web.Config.JournalTurn)
}

// on reports whether a job's journal is the server's own DuckDB file.
func (o ownJournal) on(plan *job.Plan) bool {
	if o.j == nil || postgres.IsURL(plan.Journal) || postgres.IsURL(o.loc) {
		return false
	}
	a, err := filepath.Abs(plan.Journal)
	return err == nil && a == o.loc
}

// scheduledDeps is job.Deps for a job run inside `serve`: never narrowed to
// one core while paced (cores.go), because the server's process is not idle
// between a scheduled job's requests — it renders pages and validates uploads
// (on both cores) for everyone meanwhile, and a paced job can last hours.
func (e *env) scheduledDeps() job.Deps {
	d := e.jobDeps()
	d.Paced = nil
	return d
}

// runScheduled runs a job at its time. A job on a journal of its own, or on
// a PostgreSQL journal (shared by any number of processes), runs as `paybatch
// run` does. A job on the server's own DuckDB file, which the server holds
// for its life (one writer per file: the job could never open it), runs on
// the journal the server holds (job.RunOn), taking turns with the server's
// sends: a DuckDB journal works one run set at a time.
func runScheduled(ctx context.Context, e *env, j scheduled, own ownJournal) {
	plan, err := loadScheduled(e, j.path) // read at each time: an edited job file is taken as it is now
	if err == nil {
		var out *job.Outcome
		if own.on(plan) {
			own.turn.Lock()
			out, err = job.RunOn(ctx, e.scheduledDeps(), plan, plan.Credentials(e.getenv), own.j)
			own.turn.Unlock()
		} else {
			out, err = job.Run(ctx, e.scheduledDeps(), plan, plan.Credentials(e.getenv))
		}
		if err == nil || paybatch.KindOf(err) == paybatch.ErrExceptions {
			e.log.Info("serve: scheduled job done", "job", j.path, "processed", len(out.Processed), "skipped", len(out.Skipped), "report", out.Report, "err", errString(err))
			return
		}
	}
	if errors.Is(err, context.Canceled) {
		e.log.Info("serve: scheduled job interrupted; it resumes at its next time", "job", j.path)
		return
	}
	e.log.Error("serve: scheduled job failed", "job", j.path, "err", paybatch.MaskCardNumbers(err.Error()))
}

// scheduleLines are the schedules as the admin page shows them.
func scheduleLines(jobs []scheduled) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.spec+" → "+j.path)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return paybatch.MaskCardNumbers(err.Error())
}
