package smartretry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

// TestWrongEndpointAnswersAreConfigFaults: an answer that shows the base
// URL is not the SmartRetry API is ClassConfig (stop, nothing sent), while
// the API's own refusals keep their classes (issue #16, finding 1).
func TestWrongEndpointAnswersAreConfigFaults(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/payments/refund/PLAIN1": // a web server's 404 page
			http.NotFound(w, r)
		case "/v1/payments/refund/HTML01":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<!doctype html><title>Welcome</title>")
		case "/v1/payments/refund/MOVED1":
			http.Redirect(w, r, "https://elsewhere.example/v1/payments/refund/MOVED1", http.StatusMovedPermanently)
		case "/v1/payments/refund/GONE01": // the API's own 404
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			fmt.Fprint(w, `{"type":"https://api.smartretry.com/errors/not-found","title":"Not Found","status":404,"detail":"no such transaction","reason_code":"TRANSACTION_NOT_FOUND"}`)
		case "/v1/payments/refund/GATE01": // a proxy's 502 page is an outage, not a wrong URL
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>bad gateway</html>")
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, "k", nil)
	for _, tc := range []struct {
		terminal string
		class    paybatch.ErrorClass
		words    string
	}{
		{"PLAIN1", paybatch.ClassConfig, "HTTP 404 without a SmartRetry problem body"},
		{"HTML01", paybatch.ClassConfig, "an HTML or other non-JSON page"},
		{"MOVED1", paybatch.ClassConfig, `a redirect (HTTP 301) to "https://elsewhere.example/v1/payments/refund/MOVED1"`},
		{"GONE01", paybatch.ClassRejected, "TRANSACTION_NOT_FOUND"},
		{"GATE01", paybatch.ClassTransient, "HTTP 502"},
	} {
		_, err := c.Send(context.Background(), paybatch.Request{Method: "POST", Path: "/v1/payments/refund/" + tc.terminal, Body: []byte("{}")}, "k1")
		var pe *paybatch.ProviderError
		if !errors.As(err, &pe) || pe.Class != tc.class || !strings.Contains(err.Error(), tc.words) {
			t.Errorf("%s: %v; want class %s with %q", tc.terminal, err, tc.class, tc.words)
		}
		if pe != nil && pe.Class == paybatch.ClassConfig && !strings.Contains(err.Error(), srv.URL+" is not the SmartRetry API") {
			t.Errorf("%s: the message does not name the base URL: %v", tc.terminal, err)
		}
	}
}

// TestRefusedAfterAnswerIsAnOutage: once the endpoint has answered as the
// API, a refused connection is a transient outage, not a wrong URL.
func TestRefusedAfterAnswerIsAnOutage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"transaction_id":"TX000001","order_id":"OR000001","accepted":true}`)
	}))
	c := newClient(t, srv.URL, "k", nil)
	req := paybatch.Request{Method: "POST", Path: "/v1/payments/refund/ABC123", Body: []byte("{}")}
	if _, err := c.Send(context.Background(), req, "k1"); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_, err := c.Send(context.Background(), req, "k2")
	var pe *paybatch.ProviderError
	if !errors.As(err, &pe) || pe.Class != paybatch.ClassTransient {
		t.Fatalf("refused after an answer: %v, want transient", err)
	}
}
