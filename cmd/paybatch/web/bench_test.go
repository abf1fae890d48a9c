package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/readers"
)

// benchCSV writes n refund rows (every 1000th with a bad amount).
func benchCSV(b *testing.B, n int) string {
	var buf bytes.Buffer
	buf.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
	for i := range n {
		amount := "12.34"
		if i%1000 == 999 {
			amount = "12.345"
		}
		fmt.Fprintf(&buf, "ABC123,TX%06d,OR%06d,bench-%07d,%s,USD\n", i%1000000, i%1000000, i, amount)
	}
	p := filepath.Join(b.TempDir(), "bench.csv")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkUploadValidation compares the upload → validation work of the
// server (store the file, validate through readers, group the rejects,
// scan the valid rows for the approver's facts, record the batch) with
// `paybatch validate`'s readers.Validate on the same 100,000-row CSV, in
// the same run. Target (#18): import ≤ 1.5 × validate.
func BenchmarkUploadValidation(b *testing.B) {
	const n = 100_000
	path := benchCSV(b, n)
	content, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	opts := readers.Options{Kind: paybatch.KindRefund, Rules: pipeline.RulesFor(paybatch.SmartRetry, time.Now), MaxFileSize: 1 << 30}
	b.Run("validate", func(b *testing.B) {
		for b.Loop() {
			if _, err := readers.Validate(context.Background(), []string{path}, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	h := newHarness(b, func(c *Config) { c.MaxUpload = 1 << 30 })
	u := h.users["uma"]
	b.Run("import", func(b *testing.B) {
		for b.Loop() {
			if _, err := h.srv.ImportBatch(context.Background(), u, paybatch.KindRefund, "bench.csv", "", bytes.NewReader(content)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// One page of the batch, as the server renders it (rejects page 1,
	// preview page 1 and the last preview page).
	uma := h.signIn("uma")
	for _, q := range []string{"", "?preview=2000&rejects=2"} {
		b.Run("page"+q, func(b *testing.B) {
			for b.Loop() {
				if res := h.get(uma, "/batches/1"+q); res.status != http.StatusOK {
					b.Fatalf("%d", res.status)
				}
			}
		})
	}
}
