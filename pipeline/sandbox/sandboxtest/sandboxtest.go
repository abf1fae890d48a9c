// Package sandboxtest runs the combined provider sandbox on a loopback
// listener for tests, the way net/http/httptest runs a handler: real HTTP,
// shut down when the test ends. It is the only sandbox package that imports
// testing, and the paybatch binary never imports it.
package sandboxtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/paybatch/paybatch/pipeline/sandbox"
)

// Server is a sandbox.Server listening on 127.0.0.1 for tests: real HTTP, closed
// by tb.Cleanup.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	Server *sandbox.Server
	http   *http.Server
	ln     net.Listener
}

// NewServer starts a server with opts on 127.0.0.1:0; it is shut down
// when the test ends. It fails the test if the server cannot start.
func NewServer(tb testing.TB, opts sandbox.Options) *Server {
	tb.Helper()
	srv, err := sandbox.New(opts)
	if err != nil {
		tb.Fatalf("sandbox: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("sandbox: listen: %v", err)
	}
	ts := &Server{URL: "http://" + ln.Addr().String(), Server: srv, ln: ln,
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
