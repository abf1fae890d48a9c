// Package journal is paybatch's durable record of every instruction it has
// taken on: one row per idempotency key, written before a request leaves,
// and the state that row is in. It is the permanent guard against a second
// send once the providers' 24 h replay window has passed.
//
// No SQL crosses this package's boundary. Callers use typed methods; the
// one exception is deliberate and documented: the exported views
// journal_export and rejects_export (see migrations/duckdb/0002_*.sql),
// which reconcile reads with DuckDB after ATTACHing the file read-only.
// journal_export folds the pending state changes (journal_events) into
// the rows, so a reader after a killed run sees the latest states.
//
// # Backends
//
// Journal is the interface the engine (package pipeline) and the job flow
// use; it is made of small parts (RunSet, StateWriter, Reader, Recorder,
// RunLog). DuckDB (files duckdb*.go, migrations/duckdb) is the embedded
// default. A second backend (PostgreSQL, issue #20) implements the same
// interface in files of its own with its own migrations directory, and
// must pass the conformance suite in journaltest (journaltest.Run takes a
// constructor).
//
// # Schema and migrations
//
// The schema is a numbered list of SQL files embedded from
// migrations/<backend>/NNNN_name.sql, applied in order on open, each in a
// transaction that also records it in schema_version. A journal written
// before versioning existed (tables but no schema_version) is adopted by
// 0001, whose statements are all IF NOT EXISTS. A journal with a version
// newer than this binary knows is refused (ErrNewerSchema).
//
// To add a migration (for example, tables for the web server): create the
// next file, e.g. migrations/duckdb/0004_web_users.sql, with the DDL and
// any backfill, and nothing else — it is picked up by the embed pattern and
// applied once to every journal on its next open. Then regenerate the
// empty journal new journals are copied from (migrations/empty.duckdb.gz,
// duckdb_create.go): go test ./pipeline/journal -run
// '^TestEmptyJournalTemplate$' -update — that test fails until it is (as
// it does after a DuckDB upgrade). Never edit a migration that has been
// released; add a new one. Keep the exported views' columns stable (add,
// never rename): reconcile reads them.
//
// # One lock
//
// One process at a time holds a journal: an OS advisory lock on
// JOURNAL.lock (released by the kernel when the process dies, even by
// SIGKILL). A job that must keep the journal across steps where the DuckDB
// file itself is closed (reconcile ATTACHes it read-only) takes the Lock
// first and passes it to Open. While it holds the lock, the holder
// publishes a progress snapshot (JOURNAL.progress.json, replaced
// atomically) that `paybatch status` reads instead of failing. Readers in
// other processes (reconcile, `journal export`) take it shared while Upgrade
// reads the file, so they are refused while a holder has the journal.
//
// # Crash safety of the file
//
// A DuckDB checkpoint rewrites metadata blocks that the current header
// still references in place, so a kill inside it can tear the file. The
// journal therefore never lets DuckDB checkpoint on its own (no automatic
// checkpoint, none at shutdown) and checkpoints itself — in Close, and
// during a run each time the WAL reaches a few MB, with the writes paused
// (DuckDB holds what is not checkpointed in memory) — after copying the
// file and its WAL (fsynced) to JOURNAL.checkpoint and
// JOURNAL.checkpoint.wal; the copy is removed once the checkpoint
// completes. Open restores a copy it finds (a checkpoint
// cut short) before DuckDB reads the file, and DuckDB replays the WAL. See
// duckdb_checkpoint.go and TestTornCheckpointResumes.
//
// A paced writer (a run at a rate limit, up to 1,280 requests a second)
// makes its commit groups durable
// in JOURNAL.changes instead of DuckDB; they enter journal_events in bulk,
// and Open replays a log a kill left, by sequence number, before its fold.
// See duckdb_changelog.go and TestPacedChangesSurviveAKill.
//
// A new journal is written under a temporary name (a copy of the empty
// journal), fsynced and renamed into place: a kill never leaves a
// truncated journal (TestKilledCreationLeavesNoTruncatedJournal).
//
// # Damage
//
// A journal DuckDB cannot read (truncated, overwritten) is reported as
// ErrDamaged with what to do: restore it from backup, never delete it —
// deleting it would leave only the providers' 24 h replay window between
// a rerun and a second send. So is a WAL or change log without its
// journal file (JOURNAL.wal or JOURNAL.changes beside no JOURNAL), which
// would be replayed into a new journal.
package journal
