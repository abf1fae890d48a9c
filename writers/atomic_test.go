package writers

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "summary.json")
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := io.WriteString(w, "v1"); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	err := WriteFileAtomic(path, func(w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "v1" || st.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v", b, st.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("leftovers: %v", ents)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), func(io.Writer) error { return nil }); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestMailSubject(t *testing.T) {
	sum := paybatch.Summary{Categories: map[paybatch.Category]paybatch.CategoryTotals{
		paybatch.CatMatched: {Count: 1_220}, paybatch.CatPending: {Count: 12}, paybatch.CatAmountMismatch: {Count: 2},
	}, MatchRate: 1220.0 / 1234}
	run := paybatch.RunInfo{Started: time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC), Provider: paybatch.SmarterPay, Kind: paybatch.KindDDPayment}
	if got, want := MailSubject(run, sum), "paybatch 2026-11-22 smarterpay dd-payment: 1,234 rows, 14 exceptions, 98.9% matched"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := groupThousands(n); got != want {
			t.Errorf("groupThousands(%d) = %q", n, got)
		}
	}
}
