package journal

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite migrations/empty.duckdb.gz (TestEmptyJournalTemplate)")

// emptyJournalFile is the empty journal's file, embedded by createDuckDB.
const emptyJournalFile = "migrations/empty.duckdb.gz"

// migrateNew makes a new journal at path the way the empty journal is
// made, and the way every new journal was made before it (session 14):
// every migration on a DuckDB instance of its own, CHECKPOINT, close.
// unstamp leaves schema_version.applied_at to be set by the first open
// (unstampedAt), as in the empty journal.
func migrateNew(ctx context.Context, path string, unstamp bool) error {
	db, err := sql.Open("duckdb", dsn(path)+"&threads=1")
	if err != nil {
		return err
	}
	if _, err := migrate(ctx, db, path); err != nil {
		db.Close()
		return err
	}
	if unstamp {
		if _, err := db.ExecContext(ctx, `UPDATE schema_version SET applied_at = `+unstampedAt); err != nil {
			db.Close()
			return err
		}
	}
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// describeJournal renders what a new journal must share with the one the
// migrations make: DuckDB's storage version and the header fields that
// say how the file is laid out, the library version that wrote it, the
// schema (tables with their columns, defaults and constraints, views,
// indexes, sequences, types, macros), schema_version's rows, and every
// table's row count.
func describeJournal(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < duckHeaders {
		t.Fatalf("%s: %d bytes", path, len(b))
	}
	var w strings.Builder
	cstr := func(p []byte) string { return string(bytes.TrimRight(p, "\x00")) }
	le := binary.LittleEndian
	fmt.Fprintf(&w, "storage version %d, written by DuckDB %s (%s)\n",
		le.Uint64(b[12:20]), cstr(b[52:84]), cstr(b[84:116]))
	// The rest of the main header: flags, and what newer storage versions
	// put after the library version (encryption metadata, a per-database
	// identifier that their WALs name). Zero here; an identifier would
	// differ between the two journals and fail the test — every journal
	// copied from one file would share it (see duckdb_create.go).
	fmt.Fprintf(&w, "main header flags %x, after the library version %x\n",
		b[20:52], bytes.TrimRight(b[116:4096], "\x00"))
	// The database header in use: the one with the higher iteration.
	h := b[4096:8192]
	if le.Uint64(b[8192+8:]) > le.Uint64(h[8:]) {
		h = b[8192:12288]
	}
	fmt.Fprintf(&w, "block allocation size %d, vector size %d, serialization compatibility %d\n",
		le.Uint64(h[40:]), le.Uint64(h[48:]), le.Uint64(h[56:]))

	db, err := sql.Open("duckdb", path+"?access_mode=read_only&threads=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dump := func(q string) {
		rs, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rs.Close()
		cols, _ := rs.Columns()
		for rs.Next() {
			v := make([]sql.NullString, len(cols))
			p := make([]any, len(cols))
			for i := range v {
				p[i] = &v[i]
			}
			if err := rs.Scan(p...); err != nil {
				t.Fatal(err)
			}
			f := make([]string, len(v))
			for i := range v {
				f[i] = v[i].String
				if !v[i].Valid {
					f[i] = "NULL"
				}
			}
			fmt.Fprintln(&w, strings.Join(f, " | "))
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`SELECT 'table', schema_name, table_name, sql FROM duckdb_tables() ORDER BY ALL`,
		`SELECT 'view', schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL`,
		`SELECT 'index', schema_name, index_name, sql FROM duckdb_indexes() ORDER BY ALL`,
		`SELECT 'sequence', schema_name, sequence_name, start_value, min_value, max_value, increment_by, cycle, last_value
			FROM duckdb_sequences() ORDER BY ALL`,
		`SELECT 'constraint', schema_name, table_name, constraint_type, constraint_text, constraint_column_names::VARCHAR FROM duckdb_constraints() ORDER BY ALL`,
		`SELECT 'type', schema_name, type_name, logical_type FROM duckdb_types() WHERE NOT internal ORDER BY ALL`,
		`SELECT 'macro', schema_name, function_name, macro_definition FROM duckdb_functions() WHERE NOT internal ORDER BY ALL`,
		`SELECT 'schema_version', version, name, CASE WHEN applied_at = ` + unstampedAt + ` THEN 'unstamped' ELSE 'stamped' END
			FROM schema_version ORDER BY ALL`,
	} {
		dump(q)
	}
	var tables []string
	rs, err := db.Query(`SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY ALL`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var s string
		rs.Scan(&s)
		tables = append(tables, s)
	}
	rs.Close()
	for _, tb := range tables {
		dump(`SELECT 'rows', '` + tb + `', count(*) FROM "` + tb + `"`)
	}
	return w.String()
}

// TestEmptyJournalTemplate: the empty journal new journals are copied from
// (createDuckDB) is the journal the migrations make with the linked DuckDB
// — same storage version and DuckDB, same schema, same schema_version
// rows (applied_at left to the first open), no rows — so a migration added
// (or DuckDB upgraded) without regenerating it fails here, not in a
// journal. -update regenerates it.
func TestEmptyJournalTemplate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Made under the name most journals have, which DuckDB records as the
	// catalog's (it reads the file under any name).
	want := filepath.Join(dir, "made", "journal.duckdb")
	if err := os.Mkdir(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := migrateNew(ctx, want, true); err != nil {
		t.Fatal(err)
	}
	if *update {
		made, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		var zb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
		zw.Write(made)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(emptyJournalFile, zb.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes, %d uncompressed); rebuild to embed it", emptyJournalFile, zb.Len(), len(made))
		return
	}
	got := filepath.Join(dir, "copy.duckdb")
	b, err := emptyJournalBytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(got, b, 0o644); err != nil {
		t.Fatal(err)
	}
	w, g := describeJournal(t, want), describeJournal(t, got)
	if !strings.Contains(w, "schema_version | "+strconv.Itoa(SchemaVersion())+" | ") {
		t.Fatalf("the migrations' journal lacks schema version %d:\n%s", SchemaVersion(), w)
	}
	if g != w {
		t.Fatalf("%s is not the journal the migrations make with this DuckDB (a migration was added, or DuckDB changed); regenerate it: go test ./pipeline/journal -run '^TestEmptyJournalTemplate$' -update\n%s",
			emptyJournalFile, lineDiff(w, g))
	}
	// Embedded at once: the binary's copy is the file's.
	f, err := os.ReadFile(emptyJournalFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f, emptyJournal) {
		t.Fatalf("%s changed since this test binary was built", emptyJournalFile)
	}
}

// lineDiff lists the lines only the migrations' journal has (-) and those
// only the empty journal has (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	wm, gm := in(want), in(got)
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if !gm[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !wm[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestNewJournalStampedAtCreation: a new journal's schema_version rows
// say when it was made, every migration up to SchemaVersion, and the
// journal reads and writes like one made by the migrations.
func TestNewJournalStampedAtCreation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	before := time.Now().UTC().Add(-time.Second)
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC().Add(time.Second)
	rs, err := j.SQL().QueryContext(ctx, `SELECT version, applied_at FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rs.Next() {
		var v int
		var at time.Time
		if err := rs.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		n++
		if v != n || at.Before(before) || at.After(after) {
			t.Errorf("schema_version row %d: version %d applied at %v, want %d within [%v, %v]", n, v, at, n, before, after)
		}
	}
	rs.Close()
	if n != SchemaVersion() {
		t.Fatalf("%d schema_version rows, want %d", n, SchemaVersion())
	}
	if err := j.RecordInput(ctx, Input{Path: "a.csv", SHA256: "x", Rows: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	noCreationLeftovers(t, path)
}

// TestStaleWALBesideMissingJournalRefused: a journal's WAL left without
// its file (the file moved or deleted after a run that was killed or never
// checkpointed) is not replayed into a new journal — DuckDB would, taking
// in the changes of another journal without its rows; before session 14 a
// new journal did — nor deleted: the open is refused, naming both files
// and what to do.
func TestStaleWALBesideMissingJournalRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// A write left in the WAL, as by a killed run.
	db, err := sql.Open("duckdb", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{disableShutdownCheckpoint, `INSERT INTO inputs VALUES ('stale.csv', 'x', 3, 'refund', 'p', now())`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wal, err := os.ReadFile(walPath(path))
	if err != nil || len(wal) == 0 {
		t.Fatalf("no WAL left: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = OpenDuckDB(ctx, path, Options{})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("open beside a stale WAL: %v, want ErrDamaged", err)
	}
	for _, s := range []string{"journal " + path + " is damaged", "write-ahead log " + walPath(path), "put the journal back",
		"move " + walPath(path) + " away", "do not delete it"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	if b, err := os.ReadFile(walPath(path)); err != nil || !bytes.Equal(b, wal) {
		t.Errorf("the WAL was changed: %v", err)
	}
	for _, p := range []string{path, path + ".creating"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was created: %v", p, err)
		}
	}
	// Moved away, the journal is made anew, without the WAL's change.
	if err := os.Rename(walPath(path), path+".moved"); err != nil {
		t.Fatal(err)
	}
	j, err = OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var n int
	if err := j.SQL().QueryRow(`SELECT count(*) FROM inputs`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("new journal: %d inputs, %v", n, err)
	}
}

// TestCreationLeftoversReplaced: what a killed creation leaves (a partial
// JOURNAL.creating, and the WAL of one made by the migrations) is
// replaced by a new journal.
func TestCreationLeftoversReplaced(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.duckdb")
	b, err := emptyJournalBytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".creating", b[:len(b)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(walPath(path+".creating"), []byte("not a WAL"), 0o644); err != nil {
		t.Fatal(err)
	}
	j, err := OpenDuckDB(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	noCreationLeftovers(t, path)
}

// TestKilledCreationLeavesNoTruncatedJournal: a process SIGKILLed while it
// creates journals (this test binary, looping over new paths) leaves each
// path either absent or the whole empty journal; the next open of a path
// it was creating makes the journal.
func TestKilledCreationLeavesNoTruncatedJournal(t *testing.T) {
	if dir := os.Getenv("PAYBATCH_TEST_CREATE_LOOP"); dir != "" {
		for i := 0; ; i++ {
			if err := createDuckDB(filepath.Join(dir, fmt.Sprintf("j%04d.duckdb", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	full, err := emptyJournalBytes()
	if err != nil {
		t.Fatal(err)
	}
	cut := 0
	for round := range 4 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledCreationLeavesNoTruncatedJournal$")
		cmd.Env = append(os.Environ(), "PAYBATCH_TEST_CREATE_LOOP="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once it has made a few, at a moment of its loop by chance.
		deadline := time.Now().Add(20 * time.Second)
		for {
			es, _ := filepath.Glob(filepath.Join(dir, "*.duckdb"))
			if len(es) >= 3 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		made, _ := filepath.Glob(filepath.Join(dir, "*.duckdb"))
		if len(made) < 3 {
			t.Fatalf("round %d: the child made %d journals in 20 s", round, len(made))
		}
		for _, p := range made {
			b, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(b, full) {
				t.Fatalf("round %d: %s is not the whole empty journal (%d of %d bytes): %v", round, p, len(b), len(full), err)
			}
		}
		// The path being created when killed, if any: the next open makes it.
		left, _ := filepath.Glob(filepath.Join(dir, "*.creating"))
		for _, c := range left {
			cut++
			p := strings.TrimSuffix(c, ".creating")
			j, err := OpenDuckDB(context.Background(), p, Options{})
			if err != nil {
				t.Fatalf("round %d: opening %s after the kill: %v", round, p, err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d of 4 kills landed inside a creation", cut)
}

// noCreationLeftovers fails t when a creation's temporary file or its WAL
// is left beside the journal at path.
func noCreationLeftovers(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path + ".creating", walPath(path + ".creating")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}
