package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline/journal"
)

// nullProvider accepts every request at once and keeps nothing, so a
// benchmark's memory is the engine's and the journal's alone (the fake and
// the sandbox remember every operation they executed).
type nullProvider struct{}

func (nullProvider) Prepare(in paybatch.Instruction) (paybatch.Request, error) {
	body, err := json.Marshal(struct {
		Ref    string `json:"transaction_reference_id"`
		MTID   string `json:"merchant_transaction_id"`
		Amount string `json:"amount"`
	}{in.TransactionRef, in.MerchantTxID, in.Amount.String()})
	return paybatch.Request{Method: "POST", Path: "/v1/payments/refund/" + in.Terminal, Body: body}, err
}

func (nullProvider) Send(_ context.Context, _ paybatch.Request, key string) (paybatch.Submission, error) {
	return paybatch.Submission{HTTPStatus: 200, Accepted: true, ProviderID: "TX" + key[4:20], OrderID: "OR000001"}, nil
}

func (nullProvider) Status(context.Context, paybatch.ProviderRef) (paybatch.ProviderStatus, error) {
	return paybatch.ProviderStatus{Raw: "APPROVED", Outcome: paybatch.OutcomeSucceeded}, nil
}

// genRefunds yields n refund instructions without holding them.
func genRefunds(n int) iter.Seq2[paybatch.Instruction, error] {
	usd := paybatch.MustCurrency("USD")
	return func(yield func(paybatch.Instruction, error) bool) {
		for i := range n {
			in := paybatch.Instruction{Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry,
				MerchantTxID: fmt.Sprintf("rf-%07d", i), Amount: paybatch.Money{Currency: usd, Minor: int64(100 + i)},
				Terminal: "TERM01", TransactionRef: fmt.Sprintf("TX%07d", i), OrderRef: fmt.Sprintf("OR%07d", i),
				Source: paybatch.Source{File: "batch.csv", Row: i + 2}}
			if !yield(in, nil) {
				return
			}
		}
	}
}

// resetPeakRSS makes VmHWM restart from the current RSS (Linux).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's VmHWM in bytes (0 when unavailable).
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// peakGoMemory samples the memory the Go runtime holds from the OS (heap,
// stacks, runtime structures) every 50 ms until stop, and returns the
// largest: the rest of the peak RSS is DuckDB's.
func peakGoMemory(stop <-chan struct{}) uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	var peak uint64
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		peak = max(peak, s[0].Value.Uint64()-s[1].Value.Uint64())
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// BenchmarkSubmitMillion submits a generated batch (1,000,000 rows, or
// PAYBATCH_BENCH_ROWS) to an in-process provider with no rate limit and
// reports rows/s and the process's peak RSS during Submit (ingest, send,
// poll and the final fold). Figures in BENCHMARKS.md. The poll deadline is
// an hour: on a loaded machine the default two minutes can end polling
// before every row is final, which is not what this measures.
//
//	go test ./pipeline/ -run '^$' -bench SubmitMillion -benchtime 1x
//
// Go runs under GoMemoryLimit and DuckDB's allocator frees at once from
// the moment the journal turns out large (journal.Options.Large: here at
// its first ingest chunk), as in the binary's submit (GOMEMLIMIT and
// DUCKDB_JE_MALLOC_CONF in the environment override them).
//
// PAYBATCH_BENCH_DUCKDB_SET="name=value[; name=value]" applies DuckDB
// settings to the journal first (e.g. "memory_limit='64MB'; threads=1"),
// for experiments; they last until the journal's first reopen (after its
// first run checkpoint, duckdb_reopen.go), so put lasting ones in dsn.
func BenchmarkSubmitMillion(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("PAYBATCH_BENCH_ROWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(GoMemoryLimit))
	}
	var large func()
	if os.Getenv("DUCKDB_JE_MALLOC_CONF") == "" {
		restore, done := func() {}, false
		defer func() { restore() }()
		large = func() { // once for the benchmark, however many journals
			if done {
				return
			}
			done = true
			var err error
			if restore, err = journal.FreeAtOnce(); err != nil {
				b.Error(err)
				restore = func() {}
			}
		}
	}
	for b.Loop() {
		b.StopTimer()
		j, err := journal.OpenDuckDB(context.Background(), b.TempDir()+"/j.duckdb", journal.Options{Large: large})
		if err != nil {
			b.Fatal(err)
		}
		for _, set := range strings.Split(os.Getenv("PAYBATCH_BENCH_DUCKDB_SET"), ";") {
			if set = strings.TrimSpace(set); set != "" {
				if _, err := j.SQL().ExecContext(context.Background(), "SET "+set); err != nil {
					b.Fatalf("PAYBATCH_BENCH_DUCKDB_SET: %v", err)
				}
			}
		}
		cfg := Config{Pacer: NewPacer(paybatch.Limits{}), Provider: paybatch.SmartRetry, PollInitial: time.Millisecond, PollDeadline: time.Hour}
		resetPeakRSS()
		goPeak := make(chan uint64)
		stop := make(chan struct{})
		go func() { goPeak <- peakGoMemory(stop) }()
		var phase atomic.Value
		phase.Store("ingest")
		cfg.Progress = func(p Progress) { phase.Store(p.Phase + fmt.Sprintf(" %d", p.Done)) }
		stopTrace := traceMemory(b, j, &phase)
		b.StartTimer()
		start := time.Now()
		res, err := Submit(context.Background(), j, nullProvider{}, genRefunds(n), cfg)
		el := time.Since(start)
		b.StopTimer()
		close(stop)
		stopTrace()
		b.ReportMetric(float64(<-goPeak)/1e6, "peak-Go-MB")
		if err != nil || res.States[paybatch.StateFinal] != n {
			b.Fatal(err, res.States)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "rows/s")
		b.ReportMetric(float64(peakRSS())/1e6, "peak-RSS-MB")
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// traceMemory, when PAYBATCH_BENCH_TRACE names a file, appends a line to it
// every 250 ms until stop: the seconds since the start, the phase, VmRSS, the Go
// runtime's memory and DuckDB's tracked memory by tag (duckdb_memory(),
// tags above 1 MB), in MB. For finding where a run's memory goes.
func traceMemory(b *testing.B, j *journal.DuckDB, phase *atomic.Value) (stop func()) {
	path := os.Getenv("PAYBATCH_BENCH_TRACE")
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		defer f.Close()
		s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
		start := time.Now()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			line := fmt.Sprintf("%6.2f %-14s rss=%.0f go=%.0f", time.Since(start).Seconds(), phase.Load(), float64(vmRSS())/1e6,
				float64(s[0].Value.Uint64()-s[1].Value.Uint64())/1e6)
			rs, err := j.SQL().Query(`SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 1e6 ORDER BY tag`)
			if err == nil {
				for rs.Next() {
					var tag string
					var n int64
					if rs.Scan(&tag, &n) == nil {
						line += fmt.Sprintf(" %s=%.0f", tag, float64(n)/1e6)
					}
				}
				rs.Close()
			}
			fmt.Fprintln(f, line)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-exited }
}

// vmRSS is the process's VmRSS in bytes (0 when unavailable).
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
