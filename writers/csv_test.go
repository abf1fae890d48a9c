package writers

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

func TestWriteCSVGolden(t *testing.T) {
	rep, _, _, _ := fixtureReport(t)
	dir := t.TempDir()
	paths, err := WriteCSV(context.Background(), dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(paybatch.Categories)+1 {
		t.Fatalf("paths = %q", paths)
	}
	for i, c := range paybatch.Categories {
		if filepath.Base(paths[i]) != string(c)+".csv" {
			t.Errorf("path %d = %s, want %s.csv", i, paths[i], c)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(paths) {
		t.Errorf("dir holds %d entries, want %d (no temp files)", len(ents), len(paths))
	}
	for _, p := range paths {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", "csv_"+filepath.Base(p))
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s:\n%s", p, golden, got)
		}
	}
}

func TestWriteCSVNeutralisesAndKeepsAmountsExact(t *testing.T) {
	rep, _, _, _ := fixtureReport(t)
	dir := t.TempDir()
	if _, err := WriteCSV(context.Background(), dir, rep); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(dir, "rejected_before_send.csv"))
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(injectionCorpus) {
		t.Fatalf("%d records", len(recs))
	}
	for i, s := range injectionCorpus {
		r := recs[i+1]
		for _, col := range []int{1, 4, 7, 8, 9, 10, 11} {
			if r[col] != "'"+s {
				t.Errorf("row %d col %s = %q, want %q", i+1, ReconColumns[col], r[col], "'"+s)
			}
		}
		if r[2] != "-1.10" || r[3] != "EUR" { // our own numbers are not prefixed
			t.Errorf("amount = %q %q", r[2], r[3])
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pending.csv"))
	if !strings.Contains(string(b), ",999999999999.99,USD,") {
		t.Errorf("pending.csv lacks the exact amount:\n%s", b)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "status_mismatch.csv"))
	if strings.Contains(string(b), "4111 1111 1111 1111") || !strings.Contains(string(b), "411111******1111") {
		t.Errorf("card number not masked:\n%s", b)
	}
}

func TestWriteCSVAtomicOnError(t *testing.T) {
	dir := t.TempDir()
	prev := filepath.Join(dir, "matched.csv")
	_ = os.WriteFile(prev, []byte("previous"), 0o644)
	boom := errors.New("duckdb went away")
	rep := Report{Matched: func(yield func(paybatch.ReconRow, error) bool) {
		if yield(paybatch.ReconRow{Category: paybatch.CatMatched}, nil) {
			yield(paybatch.ReconRow{}, boom)
		}
	}}
	if _, err := WriteCSV(context.Background(), dir, rep); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left behind: %v", ents)
	}
	if b, _ := os.ReadFile(prev); string(b) != "previous" {
		t.Errorf("matched.csv replaced: %q", b)
	}
	bad := Report{Matched: seqOf([]paybatch.ReconRow{{Category: "bogus", MerchantTxID: "X1"}})}
	if _, err := WriteCSV(context.Background(), dir, bad); err == nil || !strings.Contains(err.Error(), `unknown category "bogus"`) {
		t.Errorf("err = %v", err)
	}
}
