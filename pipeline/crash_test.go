package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/sandbox"
	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
)

const (
	childEnv     = "PAYBATCH_CRASH_CHILD" // journal path
	childURLEnv  = "PAYBATCH_CRASH_URL"
	childRowsEnv = "PAYBATCH_CRASH_ROWS"
	// childCheckpointEnv set: the child's DuckDB journal checkpoints
	// between every two pages of 8 rows (TestCrashResumeCheckpointing).
	childCheckpointEnv = "PAYBATCH_CRASH_CHECKPOINT"
)

// crashChild is the submit process the crash test kills: the engine with
// the real client against the parent's sandbox.
func crashChild() int {
	n, _ := strconv.Atoi(os.Getenv(childRowsEnv))
	ctx := context.Background()
	var j journal.Journal
	var err error
	if os.Getenv(childCheckpointEnv) != "" {
		j, err = journal.OpenDuckDB(ctx, os.Getenv(childEnv), journal.Options{PageRows: 8, CheckpointWAL: 1})
	} else {
		j, err = openAt(ctx, os.Getenv(childEnv)) // a DuckDB path or a postgres:// URL
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer j.Close()
	// Paced at 100/s so the sends span ~0.4 s and kills land among them.
	lim := fastLimits
	lim.Submit = paybatch.Limit{N: 100, Per: time.Second}
	pacer := pipeline.NewPacer(lim)
	c := newClient(nil, os.Getenv(childURLEnv), pacer, nil)
	cfg := testConfig(pacer)
	cfg.Concurrency = 8
	res, err := pipeline.Submit(ctx, j, c, seqOf(refundsOf(n, 3)), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if res.Verdict() == paybatch.ErrExceptions {
		return exitExceptions
	}
	if res.Verdict() != nil {
		return 3
	}
	return 0
}

// exitExceptions is the child's exit status for a run that finished with
// declines (the demo data has some), as paybatch exits.
const exitExceptions = 1

// dump renders the journal comparably: everything but timestamps,
// attempt/poll counts and the replay flag (which differ between a resumed
// and a clean run by design). Provider ids are checked against the sandbox
// by executedOnce.
func dump(t *testing.T, j journal.Journal) []string {
	t.Helper()
	rows, err := j.Rows(context.Background(), journal.Query{})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b *journal.Row) int { return strings.Compare(a.Key, b.Key) })
	var out []string
	for _, r := range rows {
		pa := "<nil>"
		if r.ProviderAmount != nil {
			pa = fmt.Sprint(*r.ProviderAmount)
		}
		out = append(out, fmt.Sprint(r.Key, r.Provider, r.Kind, r.Account, r.MerchantTxID, r.Amount.Minor, r.Amount.Currency.Code(),
			r.BodySHA256, r.State, r.Outcome, r.ProviderStatus, r.ReasonCode, r.Problem, r.HTTPStatus, r.Source,
			r.Method, r.Path, string(r.Body), pa))
	}
	return out
}

func TestCrashResume(t *testing.T) {
	crashResume(t, func(t *testing.T) string { return t.TempDir() + "/j.duckdb" })
}

// TestCrashResumeCheckpointing: the same SIGKILL rounds with the journal
// checkpointing during the run between every two pages of 8 rows (as a
// large run does when its WAL grows, #19), so kills land inside those
// checkpoints and between them too. Ten checkpoints a run (five a phase)
// take most of its time, so most kills land in one; pages of 4 rows made
// twenty, and the test took 74 cpu-s (57 s alone) instead of ≈ 45.
func TestCrashResumeCheckpointing(t *testing.T) {
	t.Setenv(childCheckpointEnv, "1")
	crashResume(t, func(t *testing.T) string { return t.TempDir() + "/j.duckdb" })
}

// crashLanes is how many of a crash test's rounds run at once: a child
// mostly waits (its pacer, the sandbox's latency, DuckDB's checkpoints), so
// two lanes halve the test's time on two cores. The reference runs as many
// children side by side, so the kills' window is a clean run's time under
// the load the rounds make.
const crashLanes = 2

// crashResume runs the SIGKILL rounds on the journals newJournal names (a
// DuckDB path or a postgres:// URL, a new empty journal per call).
func crashResume(t *testing.T, newJournal func(t *testing.T) string) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const n = 40
	// The reference: uninterrupted runs, crashLanes side by side.
	var refPaths, refURLs []string
	for range crashLanes {
		ref := sandboxtest.NewServer(t, sandbox.Options{Seed: 9, Fixtures: saleFixtures(n), SmartRetry: fastSandbox(),
			Faults: "5xx=0.05,lost=0.05,latency=5ms±5ms"})
		refPaths, refURLs = append(refPaths, newJournal(t)), append(refURLs, ref.URL)
	}
	took := make([]time.Duration, crashLanes)
	var wg sync.WaitGroup
	for lane := range crashLanes {
		wg.Go(func() {
			t.Run(fmt.Sprint("reference", lane), func(t *testing.T) {
				t0 := time.Now()
				if code := runChild(t, refPaths[lane], refURLs[lane], n, 0); code != exitExceptions {
					t.Fatalf("reference run exit %d", code)
				}
				took[lane] = time.Since(t0)
			})
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Kills land anywhere in a clean run's time (longer on a loaded
	// machine, or with checkpoints between pages): the shorter of the
	// side-by-side references', so that most kills land before the child
	// would have finished.
	window := slices.Min(took) * 9 / 10
	var want []string
	for lane, p := range refPaths {
		refJ := openTest(t, p)
		got := dump(t, refJ)
		refJ.Close()
		if lane == 0 {
			want = got
		} else if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("the reference runs' journals differ")
		}
	}

	var mu sync.Mutex // kills, executedAtKill
	kills := 0
	var executedAtKill []int
	rounds := make(chan int)
	go func() {
		defer close(rounds)
		for round := range *crashRounds {
			rounds <- round
		}
	}()
	for range crashLanes {
		wg.Go(func() {
			for round := range rounds {
				crashRound(t, round, n, newJournal, window, want, func(executed int) {
					mu.Lock()
					defer mu.Unlock()
					kills++
					executedAtKill = append(executedAtKill, executed)
				})
			}
		})
	}
	wg.Wait()
	t.Logf("%d SIGKILLs over %d rounds; operations executed when each kill landed: %v", kills, *crashRounds, executedAtKill)
	if kills < *crashRounds {
		t.Errorf("only %d kills", kills)
	}
}

// crashRound is round's subtest of crashResume: a child killed at random
// moments in window until one finishes; killed is told the operations the
// sandbox had executed when each kill landed.
func crashRound(t *testing.T, round, n int, newJournal func(t *testing.T) string, window time.Duration, want []string, killed func(executed int)) {
	t.Run(fmt.Sprint("round", round), func(t *testing.T) {
		rng := rand.New(rand.NewPCG(uint64(round), 77))
		ts := sandboxtest.NewServer(t, sandbox.Options{Seed: int64(round), Fixtures: saleFixtures(n),
			SmartRetry: fastSandbox(), Faults: "5xx=0.05,lost=0.05,latency=5ms±5ms"})
		path := newJournal(t)
		for attempt := 0; ; attempt++ {
			if attempt > 30 {
				t.Fatal("never finished")
			}
			// Kill at a random moment in the first rounds of each
			// attempt; from the 3rd attempt on, mostly let it finish.
			// A clean child takes ~0.3–1 s on a quiet machine (process
			// start, DuckDB open, ingest, sends, polls), so kills land
			// in every phase.
			var killAfter time.Duration
			if attempt < 2 || rng.IntN(4) == 0 {
				killAfter = 20*time.Millisecond + time.Duration(rng.Int64N(int64(window)))
			}
			code := runChild(t, path, ts.URL, n, killAfter)
			if code == -1 {
				killed(len(ts.Server.Operations()))
				continue
			}
			if code != exitExceptions {
				t.Fatalf("attempt %d: exit %d", attempt, code)
			}
			break
		}
		j := openTest(t, path)
		executedOnce(t, ts.Server.Operations(), refundsOf(n, 3), j)
		allFinal(t, j, n)
		got := dump(t, j)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			for i := range got {
				if i < len(want) && got[i] != want[i] {
					t.Errorf("row differs from the uninterrupted run:\n got %s\nwant %s", got[i], want[i])
					break
				}
			}
			t.Fatalf("journal differs from the uninterrupted run (%d vs %d rows)", len(got), len(want))
		}
	})
}

// runChild runs the submit child; killAfter > 0 SIGKILLs it then (returning
// -1 if it was still running).
func runChild(t *testing.T, journal, url string, n int, killAfter time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+journal, childURLEnv+"="+url, childRowsEnv+"="+strconv.Itoa(n))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if killAfter > 0 {
		select {
		case err := <-done:
			return exitCode(t, err, stderr.String())
		case <-time.After(killAfter):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return -1
		}
	}
	return exitCode(t, <-done, stderr.String())
}

func exitCode(t *testing.T, err error, stderr string) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ee.ExitCode() != exitExceptions {
			t.Logf("child stderr: %s", stderr)
		}
		return ee.ExitCode()
	}
	t.Fatal(err)
	return 0
}
