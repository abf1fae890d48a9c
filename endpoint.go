package paybatch

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
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

// EndpointFault says why a transport error shows that the endpoint itself is
// wrong, or returns "" when the error may pass (a reset, a timeout, a
// temporary DNS failure). A refused connection is a fault only when
// neverReached: once the endpoint has answered, a refusal is an outage.
func EndpointFault(err error, neverReached bool) string {
	var dns *net.DNSError
	var rec tls.RecordHeaderError
	var unknownCA x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &dns):
		if dns.IsTemporary || dns.IsTimeout {
			return ""
		}
		return fmt.Sprintf("the host %q cannot be resolved (%s)", dns.Name, dns.Err)
	case errors.As(err, &rec), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"): // net/http's words for a RecordHeaderError
		return "the server does not speak TLS (an https:// URL to a plain-http server such as the local sandbox, which is http://)"
	case errors.As(err, &unknownCA), errors.As(err, &host), errors.As(err, &invalid), errors.As(err, &verify):
		return "its TLS certificate is not valid for this host: " + err.Error()
	case neverReached && errors.Is(err, syscall.ECONNREFUSED):
		return "nothing is listening there (connection refused)"
	}
	return ""
}
