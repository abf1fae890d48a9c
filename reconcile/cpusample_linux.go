//go:build linux

package reconcile

import (
	"os"
	"syscall"
	"time"
)

// sampleCPU reads a cpuSample now (/proc/stat and getrusage).
func sampleCPU() cpuSample {
	at := time.Now()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	busy, ok := statBusy(string(b))
	if !ok {
		return cpuSample{}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}
	}
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuSample{at: at, busy: busy, self: self, ok: true}
}
