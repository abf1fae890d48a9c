// Package pgtest gives tests a fresh PostgreSQL database on the test
// cluster named by PAYBATCH_TEST_POSTGRES_URL (the password, if any, in
// PGPASSWORD). `.ci/postgres start` starts such a cluster on a loopback
// port; .ci/run does it for CI.
//
// Without a reachable cluster a test is skipped with the reason, except
// under CI=true, where it fails: CI must run the PostgreSQL half.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the test cluster's URL.
const EnvURL = "PAYBATCH_TEST_POSTGRES_URL"

// Unavailable skips tb (or fails it under CI=true) with why.
func unavailable(tb testing.TB, why string) {
	tb.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatalf("PostgreSQL is required under CI=true: %s", why)
	}
	tb.Skipf("no PostgreSQL for this test: %s (start one with: eval \"$(.ci/postgres start)\")", why)
}

// ClusterURL is the test cluster's URL, or skips (fails under CI) when
// none is configured or reachable.
func ClusterURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		unavailable(tb, EnvURL+" is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		unavailable(tb, fmt.Sprintf("%s=%s: %v", EnvURL, u, err))
	}
	conn.Close(ctx)
	return u
}

// URL creates an empty database on the test cluster and returns its URL;
// the database is dropped when tb ends.
func URL(tb testing.TB) string {
	tb.Helper()
	admin := ClusterURL(tb)
	var b [6]byte
	rand.Read(b[:])
	name := "paybatch_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	pu, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	pu.Path = "/" + name
	return pu.String()
}
