package sandbox

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestServer is a Server listening on 127.0.0.1 for tests: real HTTP, closed
// by tb.Cleanup.
type TestServer struct {
	URL    string // http://127.0.0.1:PORT
	Server *Server
	http   *http.Server
	ln     net.Listener
}

// NewTestServer starts a server with opts on 127.0.0.1:0; it is shut down
// when the test ends. It fails the test if the server cannot start.
func NewTestServer(tb testing.TB, opts Options) *TestServer {
	tb.Helper()
	srv, err := New(opts)
	if err != nil {
		tb.Fatalf("sandbox: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("sandbox: listen: %v", err)
	}
	ts := &TestServer{URL: "http://" + ln.Addr().String(), Server: srv, ln: ln,
		http: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ts.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("sandbox: serve: %v", err)
		}
	}()
	tb.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.http.Shutdown(ctx); err != nil {
			_ = ts.http.Close()
		}
		<-done
	})
	return ts
}

// Client returns an HTTP client suited to the test server.
func (ts *TestServer) Client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second}
}
