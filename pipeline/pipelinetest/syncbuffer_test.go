package pipelinetest

import (
	"strings"
	"sync"
	"testing"
)

// TestBuffer: writes from many goroutines while String is read all land,
// whole (run with -race it also checks the locking).
func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("line\n", 800) {
		t.Fatalf("%d bytes, want %d lines of \"line\\n\"", len(got), 800)
	}
}
