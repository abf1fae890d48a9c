package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/readers"
)

// The inputs' SHA-256 are computed on goroutines started before Run
// (startHashes): each hash is the file's, a file given twice is hashed once,
// a file none was started for is hashed when asked, an unreadable one gives
// readers' error, and the workbook's Summary lists both inputs' hashes.
func TestInputHashes(t *testing.T) {
	ctx := context.Background()
	const td = "../../reconcile/testdata/"
	ledger, results := td+"ledger.csv", td+"results.csv"
	missing := filepath.Join(t.TempDir(), "missing.csv")
	h := startHashes(ctx, ledger, results, ledger, "", missing)
	if len(h) != 3 {
		t.Errorf("%d hashes started, want 3 (ledger once, results, missing)", len(h))
	}
	for _, p := range []string{ledger, results, td + "journal.csv"} {
		got, err := h.sha256(ctx, p)
		want, werr := readers.FileSHA256(ctx, p)
		if err != nil || werr != nil || got != want || len(got) != 64 {
			t.Errorf("%s: %q, %v; want %q, %v", p, got, err, want, werr)
		}
	}
	if _, err := h.sha256(ctx, missing); !errors.Is(err, paybatch.ErrUnusableFile) {
		t.Errorf("missing file: %v, want ErrUnusableFile", err)
	}
	h.wait()

	// cancelled: sha256 does not wait for a hash that cannot finish
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := startHashes(cctx, ledger).sha256(cctx, ledger); err == nil {
		t.Error("cancelled: no error")
	}

	out := filepath.Join(t.TempDir(), "report.xlsx")
	if _, errs, code := runCmd(t, "reconcile", "--results", results, "--ledger", ledger, "--out", out); code != exitExceptions {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	_, inputs := summaryFacts(t, out)
	for _, p := range []string{ledger, results} {
		want, err := readers.FileSHA256(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, in := range inputs {
			found = found || in[2] == want
		}
		if !found {
			t.Errorf("Summary lacks %s's SHA-256 %s: inputs %q", p, want, inputs)
		}
	}
}
