package paybatch_test

import (
	"strings"
	"testing"

	"github.com/paybatch/paybatch"
)

func TestParseEndpoint(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		ok   bool
		want string // error fragment
	}{
		{raw: "https://api.smartretry.com", ok: true},
		{raw: "https://api.smarterpaycloud.com/service.svc/", ok: true},
		{raw: "http://127.0.0.1:8080", ok: true},
		{raw: "http://127.5.6.7:8080/service.svc", ok: true},
		{raw: "http://localhost:8080", ok: true},
		{raw: "http://[::1]:8080", ok: true},
		{raw: "http://api.smartretry.com", want: "plain http is refused"},
		{raw: "http://10.0.0.5:8080", want: "plain http is refused"},
		{raw: "http://127.0.0.1.evil.example", want: "plain http is refused"},
		{raw: "ftp://api.smartretry.com", want: "want an https"},
		{raw: "https://user:hunter2@api.smartretry.com", want: "must not carry credentials"},
		{raw: "https://api.smartretry.com?key=x", want: "must not carry"},
		{raw: "api.smartretry.com", want: "want https://host"},
	} {
		u, err := paybatch.ParseEndpoint(tt.raw)
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", tt.raw, err)
			} else if strings.HasSuffix(u.String(), "/") {
				t.Errorf("%s: trailing slash kept: %s", tt.raw, u)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.raw, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error leaks the password: %v", tt.raw, err)
		}
	}
}
