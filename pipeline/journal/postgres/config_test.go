package postgres

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string // substring; "" = accepted
		tls     bool   // TLS only, no plain-text fallback
	}{
		{"postgres://pb@127.0.0.1:5432/journal", "", false},
		{"postgres://pb@localhost/journal?sslmode=disable", "", false},
		{"postgresql://pb@[::1]:5432/journal", "", false},
		{"postgres://pb@/journal?host=/var/run/postgresql", "", false},
		{"postgres://pb@db.example.com/journal", "", true},
		{"postgres://pb@db.example.com/journal?sslmode=require", "", true},
		{"postgres://pb@db.example.com/journal?sslmode=disable", "TLS is required", false},
		{"postgres://pb@db.example.com/journal?sslmode=prefer", "TLS is required", false},
		{"postgres://pb@db.example.com/journal?sslmode=allow", "TLS is required", false},
		{"postgres://pb@127.0.0.1,db.example.com/journal?sslmode=disable", "TLS is required", false},
		{"postgres://pb:hunter2@127.0.0.1/journal", "password must not be in the URL", false},
		{"postgres://pb@127.0.0.1/journal?password=hunter2", "password must not be in the URL", false},
		{"/var/lib/paybatch/journal.duckdb", "want postgres://", false},
		{"host=db.example.com user=pb", "want postgres://", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			cfg, err := ParseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrURL) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.tls {
				return // loopback: the URL's sslmode (pgx's default prefer)
			}
			if cfg.ConnConfig.TLSConfig == nil {
				t.Fatal("no TLS to a server that is not on loopback")
			}
			for _, fb := range cfg.ConnConfig.Fallbacks {
				if fb.TLSConfig == nil {
					t.Fatal("plain-text fallback to a server that is not on loopback")
				}
			}
			if tt.tls && cfg.ConnConfig.TLSConfig.InsecureSkipVerify && !strings.Contains(tt.url, "sslmode=require") {
				t.Fatal("server certificate not verified")
			}
		})
	}
}

func TestIsURL(t *testing.T) {
	for s, want := range map[string]bool{"postgres://x": true, "POSTGRESQL://x": true, "journal.duckdb": false, "out/postgres.duckdb": false} {
		if IsURL(s) != want {
			t.Errorf("IsURL(%q) = %v", s, !want)
		}
	}
}
