package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
)

// smallDisk mounts a tmpfs of size bytes for the test (root only) and
// returns its path.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	os.MkdirAll(dir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a ballast file until the disk at dir is full and returns it.
func fill(t *testing.T, dir string) string {
	p := filepath.Join(dir, "ballast")
	f, err := os.Create(p)
	if err != nil {
		t.Error(err)
		return p
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("filling the disk: %v", err)
			}
			return p
		}
	}
}

// TestSubmitDiskFullMidSend is #16 finding 9: the disk holding the journal
// fills while rows are being sent. The run must stop resumable (exit 3) with
// counts that say what happened — not "pending 2500" when 1,318 executed —
// and no driver internals; a rerun with the disk still full is exit 3 again,
// not 2 ("fix the input"); once space is freed, a rerun finishes and every
// row was executed exactly once.
func TestSubmitDiskFullMidSend(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 600 rows")
	}
	disk := smallDisk(t, "48m")
	const n = 600
	ts := cliSandbox(t, n)
	file := refundCSV(t, t.TempDir(), n, nil)
	journal := filepath.Join(disk, "journal.duckdb")
	vars := map[string]string{envSmartRetryKey: srsandbox.TestAPIKey, envSmartRetryURL: ts.URL}

	ballast := make(chan string, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for len(ts.Server.Operations()) < 150 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		ballast <- fill(t, disk)
	}()
	out, errs, code := runCLI(t, vars, "submit", "--kind", "refund", "--journal", journal, file)
	executed := executedIDs(ts)
	t.Logf("first run: exit %d, %d executed\nstdout:\n%s\nstderr:\n%s", code, executed, out, errs)
	if code != exitResumable {
		t.Errorf("disk full mid-send: exit %d, want 3", code)
	}
	for _, internal := range []string{"IO Error", "TransactionContext", "Could not", "errno", "fold"} {
		if strings.Contains(errs, internal) {
			t.Errorf("message carries driver internals (%q):\n%s", internal, errs)
		}
	}
	if !strings.Contains(errs, "disk") || !strings.Contains(errs, "full") {
		t.Errorf("message does not say the disk is full:\n%s", errs)
	}
	if strings.Contains(out, fmtPending(n)) {
		t.Errorf("reports all %d rows pending after %d executed:\n%s", n, executed, out)
	}
	var sent int
	_, after, _ := strings.Cut(out, "  sent ")
	if _, err := fmt.Sscan(after, &sent); err != nil || sent < executed || sent >= n {
		t.Errorf("does not say how many rows were sent (%d executed at the provider; read %d, %v):\n%s", executed, sent, err, out)
	}

	// Rerun, disk still full: resumable, not "fix the input".
	out, errs, code = runCLI(t, vars, "submit", "--kind", "refund", "--journal", journal, file)
	if code != exitResumable || !strings.Contains(errs, "full") {
		t.Errorf("rerun with the disk still full: exit %d, want 3 saying the disk is full\n%s\n%s", code, out, errs)
	}

	os.Remove(<-ballast)
	out, errs, code = runCLI(t, vars, "submit", "--kind", "refund", "--journal", journal, file)
	if code != exitOK {
		t.Errorf("rerun after freeing space: exit %d\n%s\n%s", code, out, errs)
	}
	seen := map[string]int{}
	for _, op := range ts.Server.Operations() {
		seen[op.Reference]++
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids executed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s executed %d times", id, c)
		}
	}
}

func executedIDs(ts *sandboxtest.Server) int {
	seen := map[string]bool{}
	for _, op := range ts.Server.Operations() {
		seen[op.Reference] = true
	}
	return len(seen)
}

// fmtPending is how printResult shows n pending rows.
func fmtPending(n int) string { return fmt.Sprintf("  %-9s %d\n", "pending", n) }
