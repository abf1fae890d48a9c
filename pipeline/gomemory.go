package pipeline

// GoMemoryLimit is the soft limit on the Go runtime's memory
// (runtime/debug.SetMemoryLimit) under which a submit's Go side fits: the
// engine holds an input chunk and a few pages of rows (BenchmarkSubmitMillion:
// ≈ 15–30 MB of live heap at 1M rows), and without a limit the collector
// lets the heap grow to twice what is live, which took the Go side of a
// 1M-row submit to 48–54 MB at its peak; with this limit it stayed under 40
// (#19). It is the binary's to set, around its submits (the process's
// setting; a library caller decides its own); GOMEMLIMIT in the environment
// takes precedence.
const GoMemoryLimit = 40 << 20
