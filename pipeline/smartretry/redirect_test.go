package smartretry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/paybatch/paybatch"
)

// A redirect must never carry the API key to another host: Go's client
// strips only Authorization and Cookie, not x-api-key.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != "" {
			leaked.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	c, err := NewClient(ClientConfig{BaseURL: redirector.URL, APIKey: "sr_secret_key"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(context.Background(), paybatch.ProviderRef{Kind: paybatch.KindRefund, Terminal: "ABC123", ID: "TX000001"})
	if err == nil {
		t.Fatal("a 307 answer was taken as success")
	}
	if leaked.Load() != 0 {
		t.Fatal("the API key was sent to the redirect target")
	}
}
