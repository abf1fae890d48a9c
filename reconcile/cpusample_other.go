//go:build !linux

package reconcile

// sampleCPU has no /proc/stat to read here: coresFree falls back to the
// load average (none either: one thread).
func sampleCPU() cpuSample { return cpuSample{} }
