// Package sim holds the primitives shared by the provider sandboxes
// (pipeline/sandbox/smartretry, pipeline/sandbox/smarterpay) and the combined sandbox server
// (pipeline/sandbox): the ground-truth log of executed operations, counters,
// a fixed-window rate limiter and seeded fault injection.
//
// Counting rules every sandbox follows, so /_sandbox/stats adds up:
//   - "requests": incremented by a provider sandbox for every API request its
//     handler receives (health checks included). A request that a fault stops
//     before the handler (5xx, reset, hang) is counted only under its
//     faults.* counter, so attempts seen on the wire = requests + faults.5xx +
//     faults.reset + faults.hang.
//   - "executed": one per state-changing operation that ran (also recorded
//     in the OpLog). Replays never count here.
//   - "replayed": one per response served from the idempotency store.
//   - "rate_limited": one per 429 answered.
//   - "faults.5xx", "faults.reset", "faults.lost", "faults.hang",
//     "faults.latency": incremented by Faults.Wrap for each injected fault.
package sim

import (
	"maps"
	"sync"
	"time"
)

// Counter names used in Stats.
const (
	CountRequests     = "requests"
	CountExecuted     = "executed"
	CountReplayed     = "replayed"
	CountRateLimited  = "rate_limited"
	CountFault5xx     = "faults.5xx"
	CountFaultReset   = "faults.reset"
	CountFaultLost    = "faults.lost"
	CountFaultHang    = "faults.hang"
	CountFaultLatency = "faults.latency"
)

// Operation is one executed state-changing operation: the sandbox's ground
// truth of what moved money.
type Operation struct {
	Provider       string            `json:"provider"`                // "smartretry" | "smarterpay"
	Operation      string            `json:"operation"`               // sale|preauth|capture|void|refund | payment|credit
	IdempotencyKey string            `json:"idempotency_key"`         // "" when the request carried none
	Reference      string            `json:"merchant_transaction_id"` // SmartRetry merchant_transaction_id; SmarterPay custom_reference
	Amount         string            `json:"amount"`                  // exact major units, e.g. "25.00"
	Currency       string            `json:"currency"`
	IDs            map[string]string `json:"ids"` // e.g. {"transaction_id":"TX..","order_id":"OR.."} or {"id":"P0.."}
	Time           time.Time         `json:"time"`
}

// OpLog is a concurrency-safe, append-only record of executed
// state-changing operations. The zero value is ready to use.
type OpLog struct {
	mu  sync.Mutex
	ops []Operation
}

// Record appends op. Call it exactly once per executed operation, never for
// a replayed response.
func (l *OpLog) Record(op Operation) {
	if op.IDs != nil {
		op.IDs = maps.Clone(op.IDs)
	}
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// All returns a copy of every recorded operation in the order recorded.
func (l *OpLog) All() []Operation {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Operation, len(l.ops))
	for i, op := range l.ops {
		op.IDs = maps.Clone(op.IDs)
		out[i] = op
	}
	return out
}

// Len returns how many operations are recorded.
func (l *OpLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ops)
}

// Reset forgets every recorded operation.
func (l *OpLog) Reset() {
	l.mu.Lock()
	l.ops = nil
	l.mu.Unlock()
}

// Stats is a set of named counters, safe for concurrent use. The zero value
// is ready to use.
type Stats struct {
	mu sync.Mutex
	m  map[string]int64
}

// Inc adds one to the named counter.
func (s *Stats) Inc(name string) { s.Add(name, 1) }

// Add adds n to the named counter.
func (s *Stats) Add(name string, n int64) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]int64)
	}
	s.m[name] += n
	s.mu.Unlock()
}

// Get returns one counter.
func (s *Stats) Get(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[name]
}

// Snapshot returns a copy of every counter. The well-known counters (see the
// package doc) are always present, zero when nothing happened.
func (s *Stats) Snapshot() map[string]int64 {
	out := map[string]int64{
		CountRequests: 0, CountExecuted: 0, CountReplayed: 0, CountRateLimited: 0,
		CountFault5xx: 0, CountFaultReset: 0, CountFaultLost: 0, CountFaultHang: 0, CountFaultLatency: 0,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(out, s.m)
	return out
}

// Reset sets every counter back to zero.
func (s *Stats) Reset() {
	s.mu.Lock()
	s.m = nil
	s.mu.Unlock()
}
