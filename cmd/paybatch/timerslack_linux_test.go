//go:build linux && cgo

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// threadSlacks returns the timer slack of n OS threads held at once (so at
// least n−1 of them are not the thread that runs the caller, and some are
// started for the purpose).
func threadSlacks(n int) []time.Duration {
	out := make([]time.Duration, n)
	var ready, hold sync.WaitGroup
	ready.Add(n)
	hold.Add(1)
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			out[i] = currentTimerSlack()
			ready.Done()
			hold.Wait() // keep the thread until every goroutine has one
		}()
	}
	ready.Wait()
	hold.Done()
	done.Wait()
	return out
}

// timerSlackMain is the child of TestTimerSlackEnv: it prints the slack of
// several threads.
func timerSlackMain() int {
	for _, d := range threadSlacks(8) {
		fmt.Println(int64(d))
	}
	return 0
}

// TestTimerSlack: every thread of the process — the test binary links the
// same constructor as paybatch — has the 1 ms slack, threads started after
// main included (#19: the slack is what halves the wake-ups of a paced run).
func TestTimerSlack(t *testing.T) {
	want := time.Millisecond
	if s := os.Getenv(timerSlackEnv); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v == 0 {
			t.Skipf("%s=%q in the environment", timerSlackEnv, s)
		}
		want = time.Duration(v)
	}
	for i, got := range threadSlacks(8) {
		if got != want {
			t.Errorf("thread %d: timer slack %v, want %v", i, got, want)
		}
	}
}

// TestTimerSlackEnv: PAYBATCH_TIMER_SLACK_NS sets every thread's slack;
// a value that is not nanoseconds is refused with the fix, exit 2.
func TestTimerSlackEnv(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PAYBATCH_TEST_TIMERSLACK=1", timerSlackEnv+"=250000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 8 {
		t.Fatalf("child printed %q", out)
	}
	for i, l := range lines {
		if l != "250000" {
			t.Errorf("thread %d: timer slack %s ns, want 250000", i, l)
		}
	}

	for _, v := range []string{"1ms", "-5", "+5", " 5", "1e6", "18446744073709551616"} {
		_, errs, code := runCLI(t, map[string]string{timerSlackEnv: v}, "config", "--help")
		if code != exitUsage || !strings.Contains(errs, timerSlackEnv+"="+strconv.Quote(v)) || !strings.Contains(errs, "want the timer slack in nanoseconds") {
			t.Errorf("%s=%q: exit %d, want %d with the fix named:\n%s", timerSlackEnv, v, code, exitUsage, errs)
		}
	}
	for _, v := range []string{"0", "1000000", "250000"} {
		if _, errs, code := runCLI(t, map[string]string{timerSlackEnv: v}, "config", "--help"); code != exitOK {
			t.Errorf("%s=%q: exit %d\n%s", timerSlackEnv, v, code, errs)
		}
	}
}
