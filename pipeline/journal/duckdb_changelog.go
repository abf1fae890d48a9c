package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"time"

	"github.com/paybatch/paybatch"
)

// While a run is paced at a provider's rate limit (its writer lingers
// logLinger or more), the journal's state changes are made durable in a
// log beside it,
// JOURNAL.changes, instead of in DuckDB: a group's changes are appended to
// the file and fsync'd before any of its Saves returns, and enter
// journal_events in bulk — when the writer stops (Flush, Checkpoint,
// Close), when maxLoggedChanges wait, and before a read that needs the
// latest states (materialise). At a rate limit the changes of a group are
// a handful; DuckDB's append and commit of them cost ≈ 0.07 ms of CPU a
// row, most of what the journal added to a paced send (#19), where
// writing them to the log costs a few microseconds.
//
// Crash safety rests on one order and one number:
//   - a change enters journal_events with the seq the log gave it, and a
//     log's seqs follow journal_events' largest when the writer started
//     (nothing else appends to journal_events while a log is open);
//   - the log is removed (and its directory fsync'd) after its changes
//     are committed to DuckDB and before any fold empties journal_events.
//
// So on open (replayChangeLog) the log's changes with a seq above
// journal_events' largest are those not yet committed to DuckDB: they are
// appended, the log removed, and the usual fold applies them. A change
// already committed (a crash between a materialisation and the log's
// truncation or removal) is recognised by its seq and not applied twice.
// A torn group at the log's end (the crash cut its write) was never
// acknowledged — its Saves had not returned, so none of its requests left
// — and the log is read up to it, as DuckDB reads its own WAL.

// logLinger is the shortest linger at which a writer logs its changes:
// the engine lingers about 64 departures (at most 200 ms), so at rates up
// to 1,280 a second, where a DuckDB commit of a group is small and runs
// DuckDB's code cold. Faster, a group is a commit of 128 changes every few
// milliseconds, DuckDB's code stays warm, and the log's gain was not
// shown: at 90,000 rows unthrottled it measured 4,300–4,700 rows/s against
// 4,930–5,005 without it in BenchmarkSubmitCPUAtLimit/unthrottled, though
// faster run by hand (#19, session 16) — so those runs commit to DuckDB
// as before.
const logLinger = 50 * time.Millisecond

// changeLogPath is the paced-changes log of the journal at path.
func changeLogPath(path string) string { return path + ".changes" }

// maxLoggedChanges bounds the changes a log holds before they enter
// journal_events (≈ 27 s at 300 requests a second, ≈ 1.5 MB of memory).
const maxLoggedChanges = 16_384

// changeLog is the open log of a paced writer.
type changeLog struct {
	path string
	f    *os.File
}

// createChangeLog creates the journal's change log. One left by a crash
// is replayed when the journal opens, so finding one here is an error.
func createChangeLog(journal string) (*changeLog, error) {
	path := changeLogPath(journal)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("journal: the change log %s of an earlier failure is still there; it is brought in when the journal next opens: run again", path)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: change log: %w", err)
	}
	// The file's name must be durable before the first group in it is
	// acknowledged.
	if err := syncDir(path); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return &changeLog{path: path, f: f}, nil
}

// write appends b (whole frames) and makes it durable.
func (l *changeLog) write(b []byte) error {
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	return nil
}

// empty truncates the log once its changes are committed to DuckDB. Its
// durability is not needed: changes found again are recognised by seq.
func (l *changeLog) empty() error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	return nil
}

// remove closes and deletes the log, durably.
func (l *changeLog) remove() error {
	err := l.f.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("journal: change log: %w", err)
	}
	return syncDir(l.path)
}

// A frame is the payload's length and its CRC-32C (each four bytes,
// little endian), then the payload: one change, as appendChange encodes
// it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const frameHeader = 8

// appendChange appends the frame of change seq of r's mutable fields (the
// columns of journal_events) to b.
func appendChange(b []byte, seq int64, r *Row) []byte {
	at := len(b)
	b = append(b, make([]byte, frameHeader)...)
	b = binary.AppendVarint(b, seq)
	for _, s := range [...]string{r.Key, string(r.State), string(r.Outcome), r.ProviderStatus, r.ProviderID, r.OrderID,
		r.ReasonCode, r.Problem} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	// As eventArgs stores them.
	b = binary.AppendVarint(b, int64(int32(r.HTTPStatus)))
	b = binary.AppendVarint(b, int64(int32(r.Attempts)))
	b = binary.AppendVarint(b, int64(int32(r.Polls)))
	var flags byte
	if r.Replayed {
		flags |= 1
	}
	if r.ProviderAmount != nil {
		flags |= 2
	}
	b = append(b, flags)
	if r.ProviderAmount != nil {
		b = binary.AppendVarint(b, *r.ProviderAmount)
	}
	for _, t := range [...]time.Time{r.UpdatedAt, r.SentAt, r.PolledAt, r.FinalAt, r.PollRefusedAt} {
		b = appendInstant(b, t)
	}
	// The provider's date is a calendar date: kept as the day it names in
	// its own location (as nullDate stores it), not as an instant.
	if r.ProviderDate.IsZero() {
		b = append(b, 0)
	} else {
		y, m, d := r.ProviderDate.Date()
		b = append(b, 1)
		b = binary.AppendVarint(b, int64(y))
		b = append(b, byte(m), byte(d))
	}
	pl := b[at+frameHeader:]
	binary.LittleEndian.PutUint32(b[at:], uint32(len(pl)))
	binary.LittleEndian.PutUint32(b[at+4:], crc32.Checksum(pl, castagnoli))
	return b
}

// appendInstant appends t as a presence byte, then its Unix seconds and
// nanoseconds (zero: absent, as nullTime stores it).
func appendInstant(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// loggedChange is one change read back from a log.
type loggedChange struct {
	seq int64
	row Row // its mutable fields and key
}

// readChanges decodes the frames of a change log up to its end or its
// first torn frame, calling yield for each change in order; it returns
// the bytes read (a torn tail's start).
func readChanges(b []byte, yield func(loggedChange) error) (int, error) {
	off := 0
	for off < len(b) {
		if len(b)-off < frameHeader {
			return off, nil
		}
		n := int64(binary.LittleEndian.Uint32(b[off:]))
		if n > int64(len(b)-off-frameHeader) {
			return off, nil
		}
		pl := b[off+frameHeader : off+frameHeader+int(n)]
		if crc32.Checksum(pl, castagnoli) != binary.LittleEndian.Uint32(b[off+4:]) {
			return off, nil
		}
		c, err := decodeChange(pl)
		if err != nil {
			// A checksummed frame that does not decode was not written by
			// this version: refuse rather than skip a change.
			return off, fmt.Errorf("change log at byte %d: %w", off, err)
		}
		if err := yield(c); err != nil {
			return off, err
		}
		off += frameHeader + int(n)
	}
	return off, nil
}

// decodeChange decodes appendChange's payload.
func decodeChange(p []byte) (loggedChange, error) {
	d := changeDecoder{b: p}
	var c loggedChange
	r := &c.row
	c.seq = d.varint()
	var state, outcome string
	for _, s := range []*string{&r.Key, &state, &outcome, &r.ProviderStatus, &r.ProviderID, &r.OrderID, &r.ReasonCode, &r.Problem} {
		*s = d.str()
	}
	r.State, r.Outcome = paybatch.State(state), paybatch.Outcome(outcome)
	r.HTTPStatus, r.Attempts, r.Polls = d.int32(), d.int32(), d.int32()
	flags := d.byte()
	r.Replayed = flags&1 != 0
	if flags&2 != 0 {
		v := d.varint()
		r.ProviderAmount = &v
	}
	for _, t := range []*time.Time{&r.UpdatedAt, &r.SentAt, &r.PolledAt, &r.FinalAt, &r.PollRefusedAt} {
		*t = d.instant()
	}
	if d.byte() == 1 {
		y := d.varint()
		m, day := d.byte(), d.byte()
		if y < math.MinInt32 || y > math.MaxInt32 || m < 1 || m > 12 || day < 1 || day > 31 {
			d.fail()
		} else {
			r.ProviderDate = time.Date(int(y), time.Month(m), int(day), 0, 0, 0, 0, time.UTC)
		}
	}
	if flags&^3 != 0 || len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return loggedChange{}, d.err
	}
	return c, nil
}

// changeDecoder reads a payload's fields; the first error sticks.
type changeDecoder struct {
	b   []byte
	err error
}

func (d *changeDecoder) fail() {
	if d.err == nil {
		d.err = errors.New("malformed change")
	}
	d.b = nil
}

func (d *changeDecoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *changeDecoder) int32() int {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *changeDecoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *changeDecoder) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.fail()
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func (d *changeDecoder) instant() time.Time {
	switch d.byte() {
	case 0:
		return time.Time{}
	case 1:
		sec := d.varint()
		ns, k := binary.Uvarint(d.b)
		if k <= 0 || ns >= 1e9 {
			d.fail()
			return time.Time{}
		}
		d.b = d.b[k:]
		return time.Unix(sec, int64(ns)).UTC()
	}
	d.fail()
	return time.Time{}
}
