// Package pipelinetest holds helpers for the tests of pipeline and of the
// commands built on it (cmd/paybatch). paybatch never imports it.
package pipelinetest

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that many goroutines may write (a logger, a
// command's output) while a test reads what it holds so far: Write and
// String may be called concurrently. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
