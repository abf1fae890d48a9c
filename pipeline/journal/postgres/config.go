package postgres

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrURL is returned for a journal URL paybatch refuses to use.
var ErrURL = errors.New("unusable PostgreSQL journal URL")

// IsURL reports whether a journal location names a PostgreSQL server
// (postgres:// or postgresql://) rather than a DuckDB file.
func IsURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// ParseURL checks a journal URL and returns the pool configuration for it.
//
//   - The password never comes from the URL (it would end up in job files,
//     shell history and process lists): it comes from PGPASSWORD or the
//     PGPASSFILE/~/.pgpass file, as for psql.
//   - A server that is not on loopback is reached over TLS only: with no
//     sslmode the server's certificate is verified (verify-full); disable,
//     allow and prefer (which can fall back to plain text) are refused.
func ParseURL(raw string) (*pgxpool.Config, error) {
	if !IsURL(raw) {
		return nil, fmt.Errorf("%w: %q: want postgres://user@host:port/database", ErrURL, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	q := u.Query()
	if _, ok := u.User.Password(); ok || q.Has("password") {
		return nil, fmt.Errorf("%w: %s: the password must not be in the URL; set PGPASSWORD (or use ~/.pgpass)", ErrURL, Redact(raw))
	}
	hosts := hostsOf(u)
	loopback := true
	for _, h := range hosts {
		if !isLoopback(h) {
			loopback = false
		}
	}
	mode := q.Get("sslmode")
	if !loopback {
		switch mode {
		case "":
			q.Set("sslmode", "verify-full")
			u.RawQuery = q.Encode()
		case "require", "verify-ca", "verify-full":
		default:
			return nil, fmt.Errorf("%w: %s: sslmode=%s to a server that is not on loopback; TLS is required (sslmode=verify-full, verify-ca or require)",
				ErrURL, Redact(raw), mode)
		}
	}
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrURL, Redact(raw), err)
	}
	if !loopback {
		if cfg.ConnConfig.TLSConfig == nil {
			return nil, fmt.Errorf("%w: %s: no TLS configuration", ErrURL, Redact(raw))
		}
		for _, fb := range cfg.ConnConfig.Fallbacks {
			if fb.TLSConfig == nil {
				return nil, fmt.Errorf("%w: %s: a plain-text fallback is configured", ErrURL, Redact(raw))
			}
		}
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "paybatch"
	}
	return cfg, nil
}

// hostsOf lists the URL's hosts (pgx accepts host1:port1,host2:port2 and a
// host query parameter, which may be a Unix socket directory).
func hostsOf(u *url.URL) []string {
	var hs []string
	for _, hp := range strings.Split(u.Host, ",") {
		if hp == "" {
			continue
		}
		h, _, err := net.SplitHostPort(hp)
		if err != nil {
			h = strings.Trim(hp, "[]")
		}
		hs = append(hs, h)
	}
	if h := u.Query().Get("host"); h != "" {
		hs = append(hs, strings.Split(h, ",")...)
	}
	if len(hs) == 0 {
		hs = append(hs, "") // pgx's default: PGHOST or the local socket
	}
	return hs
}

// isLoopback: a Unix socket (a path), localhost or a loopback address.
func isLoopback(h string) bool {
	if h == "" || strings.HasPrefix(h, "/") || strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Redact is raw with any password replaced, for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
