package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// onceOpener opens a file and then removes it from the directory: the
// handle still reads it, but a second open by path finds nothing. A command
// that read an input twice by path (to hash, to validate, to send) fails.
type onceOpener struct {
	mu     sync.Mutex
	opened map[string]int
}

func (o *onceOpener) open(path string) (*os.File, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opened == nil {
		o.opened = map[string]int{}
	}
	o.opened[path]++
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return f, os.Remove(path)
}

// Issue #15: submit and run open each input file once and read it through
// that one handle (hash, validation, the rows sent): the bytes sent are the
// bytes validated, and an input is never read again by its name.
func TestInputsOpenedOnce(t *testing.T) {
	t.Run("submit", func(t *testing.T) {
		const n = 12
		ts := cliSandbox(t, n)
		file := refundCSV(t, t.TempDir(), n, nil)
		o := &onceOpener{}
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"submit", "--kind", "refund", "--poll-deadline", "30s", file}, env{stdout: &out, stderr: &errb,
			getenv: func(k string) string {
				return map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}[k]
			}, open: o.open})
		if code := exitCode(err); code != exitOK {
			t.Fatalf("exit %d (%v)\n%s\n%s", code, err, out.String(), errb.String())
		}
		if got := o.opened[file]; got != 1 || len(o.opened) != 1 {
			t.Errorf("opens %v, want %s once", o.opened, file)
		}
		if len(ts.Server.Operations()) != n {
			t.Errorf("%d operations at the provider, want %d", len(ts.Server.Operations()), n)
		}
	})
	t.Run("run", func(t *testing.T) {
		job, root := exampleJob(t)
		ts := demoSandbox(t)
		o := &onceOpener{}
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"run", "--config", job}, env{stdout: &out, stderr: &errb,
			getenv: demoEnv(ts, nil), open: o.open})
		if code := exitCode(err); code != exitExceptions {
			t.Fatalf("exit %d (%v), want 1 (the demo data has exceptions)\n%s\n%s", code, err, out.String(), errb.String())
		}
		input := filepath.Join(root, "testdata", "demo", "refunds.csv")
		if got := o.opened[input]; got != 1 || len(o.opened) != 1 {
			t.Errorf("opens %v, want %s once", o.opened, input)
		}
		if !strings.Contains(out.String(), "submitting") || len(ts.Server.Operations()) == 0 {
			t.Errorf("nothing was submitted:\n%s", out.String())
		}
	})
}
