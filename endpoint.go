package paybatch

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ParseEndpoint parses a provider base URL or relay address and enforces
// paybatch's transport rule: https always; plain http only to a loopback
// host (the local sandbox). Credentials, queries and fragments in the URL are
// refused, and errors show the URL without any userinfo.
func ParseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(raw), "/"))
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	switch {
	case u.Host == "":
		return nil, fmt.Errorf("endpoint %q: want https://host[:port][/path]", u.Redacted())
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("endpoint %s: plain http is refused except to a loopback host (the sandbox); use https", u.Redacted())
	default:
		return nil, fmt.Errorf("endpoint %s: want an https:// URL", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("endpoint %s: must not carry credentials, a query or a fragment", u.Redacted())
	}
	return u, nil
}

// IsLoopbackHost reports whether host (a name or IP, brackets allowed) is
// this machine: localhost or an address in 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
