package journal

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
)

// While state changes wait to be folded (journal_events, a send in
// progress), a page of one file filtered by state must take each row's
// latest state from its latest change, and journal_events has no order by
// source row: a filter with few rows in a million-row file joined every
// row with its changes (a filter with no rows took 16 s with 400,000
// changes waiting, BENCHMARKS.md #18). So a read that needs it keeps, in
// memory, the latest state of every row of that file (stateIndex): built
// once by one scan, then kept current by the journal's own commits — the
// DuckDB journal is the only writer of its file (its lock), every state
// change goes through duckCommitter, and rows are added or removed only by
// Ingest, which drops the index. The page's rows are then found in memory
// and read with one bounded query. ≈ 8 bytes a row (8 MB for a million), at
// most maxStateFiles files.

// maxStateFiles bounds the files whose states are kept (the least recently
// used goes).
const maxStateFiles = 2

// stateIndex is the kept latest states, per file.
type stateIndex struct {
	mu    sync.Mutex
	epoch uint64 // counted up when rows are added or removed (Ingest)
	files map[string]*fileStates
	logs  []*stateLog // builds under way: the changes committed meanwhile
	// building: the files whose states are being read, closed when done
	// (a second reader waits for the first).
	building map[string]chan struct{}
	tick     uint64
	// keepSends (Options.KeepSendStates): a commit of a file's changes
	// reads its states ahead (readAhead). asked remembers each file's last
	// read ahead, by epoch, so that a commit reads a file once per Ingest.
	keepSends bool
	asked     map[string]uint64
}

// fileStates are the latest state of every journal row of one file, in
// source order (sheet, row); a file with two rows at one source position
// is not kept.
type fileStates struct {
	sheets []string // by code
	rows   []stateRow
	values []string         // state and outcome values by code
	codes  map[string]uint8 // and their codes
	used   uint64
}

// stateRow is one row's position and latest state; problemBit is set in
// state when its problem is not empty.
type stateRow struct {
	row     int32
	sheet   uint16
	state   uint8
	outcome uint8
}

const problemBit = 0x80

// stateLog gathers the changes to one file committed while its index is
// built.
type stateLog struct {
	file    string
	changes []*Row
	full    bool
}

const maxStateLog = 1 << 20

func (fs *fileStates) code(v string) (uint8, bool) {
	if c, ok := fs.codes[v]; ok {
		return c, true
	}
	if len(fs.values) >= problemBit {
		return 0, false
	}
	c := uint8(len(fs.values))
	fs.values = append(fs.values, v)
	fs.codes[v] = c
	return c, true
}

// find is the index of the row at (sheet, row), or -1.
func (fs *fileStates) find(sheet string, row int) int {
	sc := slices.Index(fs.sheets, sheet)
	if sc < 0 {
		return -1
	}
	i, ok := slices.BinarySearchFunc(fs.rows, stateRow{row: int32(row), sheet: uint16(sc)}, cmpStateRow)
	if !ok {
		return -1
	}
	return i
}

func cmpStateRow(a, b stateRow) int {
	if a.sheet != b.sheet {
		return int(a.sheet) - int(b.sheet)
	}
	return int(a.row) - int(b.row)
}

// apply sets the latest state of r's row; false when the row is not
// there (or a value cannot be coded): the index is then dropped.
func (fs *fileStates) apply(r *Row) bool {
	i := fs.find(r.Source.Sheet, r.Source.Row)
	if i < 0 {
		return false
	}
	return fs.set(&fs.rows[i], string(r.State), string(r.Outcome), r.Problem != "")
}

// set codes state, outcome and whether a problem is set into s; false when
// a value cannot be coded.
func (fs *fileStates) set(s *stateRow, state, outcome string, problem bool) bool {
	st, ok1 := fs.code(state)
	oc, ok2 := fs.code(outcome)
	if !ok1 || !ok2 {
		return false
	}
	if problem {
		st |= problemBit
	}
	s.state, s.outcome = st, oc
	return true
}

// committed records a committed group of changes: in the kept files' states
// and in the logs of builds under way; with keepSends, the files of the group
// have their states read ahead.
func (j *DuckDB) committed(group []Change) {
	x := &j.stateIdx
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.keepSends {
		for i, ch := range group {
			if f := ch.Row.Source.File; i == 0 || f != group[i-1].Row.Source.File {
				j.readAhead(f, true)
			}
		}
	}
	if len(x.files) == 0 && len(x.logs) == 0 {
		return
	}
	for _, ch := range group {
		f := ch.Row.Source.File
		if fs := x.files[f]; fs != nil && !fs.apply(ch.Row) {
			delete(x.files, f)
		}
		for _, l := range x.logs {
			if l.file != f || l.full {
				continue
			}
			if len(l.changes) >= maxStateLog {
				l.full, l.changes = true, nil
				continue
			}
			l.changes = append(l.changes, ch.Row)
		}
	}
}

// readAhead starts reading file's states in the background, so that the
// pages by state that may follow find them kept, unless they are kept or
// being read or the journal is closing. It is asked on two occasions:
//   - a commit of the file's changes (Options.KeepSendStates: paybatch serve
//     sending a batch; the first page by state may be opened from a link).
//     once: a commit reads a file at most once per Ingest, so that a file
//     that cannot be kept, or was dropped for another (maxStateFiles), is
//     not read again at every commit.
//   - a page of every row of the file while changes wait (Rows): someone is
//     looking at the file, so its states are read again whenever they are
//     not kept (after a drop too).
//
// The read runs on the journal's background context: Close cancels it and
// waits. Its error is not kept: the next page by state reads the states
// again and reports it. Called with x.mu held.
func (j *DuckDB) readAhead(file string, once bool) {
	x := &j.stateIdx
	if x.files[file] != nil || x.building[file] != nil || j.bgCtx.Err() != nil {
		return
	}
	if e, ok := x.asked[file]; once && ok && e == x.epoch {
		return
	}
	if x.asked == nil {
		x.asked = map[string]uint64{}
	}
	x.asked[file] = x.epoch
	b := x.startBuild(file)
	j.bg.Add(1) // before Close's Wait: Close cancels bgCtx with x.mu held
	go func() {
		defer j.bg.Done()
		fs, err := j.readStates(j.bgCtx, file)
		x.mu.Lock()
		defer x.mu.Unlock()
		_, _ = x.endBuild(b, fs, err)
	}()
}

// rowsChanging drops every kept index (Ingest adds or removes rows); builds
// under way are discarded when they end.
func (x *stateIndex) rowsChanging() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.epoch++
	x.files = nil
}

// states returns file's kept latest states, building them when not kept;
// nil (and no error) when the file cannot be kept (two rows at one source
// position, or rows added meanwhile).
func (j *DuckDB) states(ctx context.Context, file string) (*fileStates, error) {
	x := &j.stateIdx
	for {
		x.mu.Lock()
		x.tick++
		if fs := x.files[file]; fs != nil {
			fs.used = x.tick
			x.mu.Unlock()
			return fs, nil
		}
		ch := x.building[file]
		if ch == nil {
			break // with x.mu held
		}
		x.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("journal: read states: %w", ctx.Err())
		}
	}
	b := x.startBuild(file)
	x.mu.Unlock()
	fs, err := j.readStates(ctx, file)
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.endBuild(b, fs, err)
}

// stateBuild is a read of one file's states under way.
type stateBuild struct {
	file  string
	done  chan struct{} // closed when it ends
	log   *stateLog     // the changes committed meanwhile
	epoch uint64
}

// startBuild records that file's states are being read: the readers that
// want them meanwhile wait for it, the commits meanwhile are logged.
// Called with x.mu held, when the file's states are neither kept nor being
// read.
func (x *stateIndex) startBuild(file string) *stateBuild {
	b := &stateBuild{file: file, done: make(chan struct{}), log: &stateLog{file: file}, epoch: x.epoch}
	if x.building == nil {
		x.building = map[string]chan struct{}{}
	}
	x.building[file] = b.done
	x.logs = append(x.logs, b.log)
	return b
}

// endBuild ends b with what its read returned, keeping fs (with the
// changes committed meanwhile applied) when it can be kept; the
// least recently used file goes beyond maxStateFiles. Called with x.mu
// held.
func (x *stateIndex) endBuild(b *stateBuild, fs *fileStates, err error) (*fileStates, error) {
	delete(x.building, b.file)
	close(b.done)
	x.logs = slices.DeleteFunc(x.logs, func(o *stateLog) bool { return o == b.log })
	if err != nil || fs == nil || x.epoch != b.epoch || b.log.full {
		return nil, err
	}
	// The changes committed while the file was read: each may or may not
	// be in what the read saw; applied again in commit order, each row
	// ends at its latest.
	for _, r := range b.log.changes {
		if !fs.apply(r) {
			return nil, nil
		}
	}
	if x.files == nil {
		x.files = map[string]*fileStates{}
	}
	for len(x.files) >= maxStateFiles {
		var old string
		for f, o := range x.files {
			if old == "" || o.used < x.files[old].used {
				old = f
			}
		}
		delete(x.files, old)
	}
	x.tick++
	fs.used = x.tick
	x.files[b.file] = fs
	return fs, nil
}

// readStates reads the latest state of every row of file: in one
// transaction (one snapshot), the file's rows as the table holds them, then
// the latest change waiting for each changed row of the file, set over
// them. (One query applying the changes to every row and sorting them ran
// out of the journal's 96 MB with 1M rows and 400,000 changes; applying
// them piece by piece of the file read every change once a piece.)
func (j *DuckDB) readStates(ctx context.Context, file string) (*fileStates, error) {
	// The changes committed before this build began are read from the
	// tables; those after, from its log (startBuild).
	if err := j.materialise(); err != nil {
		return nil, fmt.Errorf("journal: read states: %w", err)
	}
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("journal: read states: %w", err)
	}
	defer tx.Rollback()
	fs := &fileStates{codes: map[string]uint8{}}
	sheets := map[string]uint16{}
	var changed []stateRow
	for pass, q := range []string{
		`SELECT source_sheet, source_row, state, outcome, problem <> '' FROM journal WHERE source_file = ?`,
		`SELECT j.source_sheet, j.source_row, e.state, e.outcome, e.problem <> ''
		FROM (SELECT key, arg_max(state, seq) AS state, arg_max(outcome, seq) AS outcome, arg_max(problem, seq) AS problem
			FROM journal_events GROUP BY key) AS e JOIN journal AS j ON j.key = e.key WHERE j.source_file = ?`,
	} {
		ok, err := fs.scan(ctx, tx, q, file, sheets, func(r stateRow) {
			if pass == 0 {
				fs.rows = append(fs.rows, r)
			} else {
				changed = append(changed, r)
			}
		})
		if err != nil || !ok {
			return nil, err
		}
		if pass > 0 {
			break
		}
		// Sheets in SQL's order (Rows orders by sheet, then row), rows in it.
		order := slices.Clone(fs.sheets)
		slices.Sort(order)
		recode := make([]uint16, len(fs.sheets))
		for i, name := range fs.sheets {
			recode[i] = uint16(slices.Index(order, name))
			sheets[name] = recode[i]
		}
		fs.sheets = order
		for i := range fs.rows {
			fs.rows[i].sheet = recode[fs.rows[i].sheet]
		}
		slices.SortFunc(fs.rows, cmpStateRow)
		for i := 1; i < len(fs.rows); i++ {
			if cmpStateRow(fs.rows[i-1], fs.rows[i]) == 0 {
				return nil, nil // two rows at one position: not kept
			}
		}
	}
	for _, c := range changed {
		i, ok := slices.BinarySearchFunc(fs.rows, c, cmpStateRow)
		if !ok {
			return nil, nil
		}
		fs.rows[i].state, fs.rows[i].outcome = c.state, c.outcome
	}
	return fs, nil
}

// scan reads q's rows (sheet, row, state, outcome, problem set) as
// stateRows, coding new sheets and values; false when they cannot be coded.
func (fs *fileStates) scan(ctx context.Context, tx *sql.Tx, q, file string, sheets map[string]uint16, add func(stateRow)) (bool, error) {
	rs, err := tx.QueryContext(ctx, q, file)
	if err != nil {
		return false, fmt.Errorf("journal: read states: %w", err)
	}
	defer rs.Close()
	var (
		sheet, st, oc sql.RawBytes
		row           int64
		problem       bool
	)
	for rs.Next() {
		if err := rs.Scan(&sheet, &row, &st, &oc, &problem); err != nil {
			return false, fmt.Errorf("journal: read states: %w", err)
		}
		sc, ok := sheets[string(sheet)]
		if !ok {
			if len(fs.sheets) >= 1<<16-1 {
				return false, nil
			}
			sc = uint16(len(fs.sheets))
			sheets[string(sheet)] = sc
			fs.sheets = append(fs.sheets, string(sheet))
		}
		s := stateRow{row: int32(row), sheet: sc}
		if !fs.set(&s, string(st), string(oc), problem) {
			return false, nil
		}
		add(s)
	}
	if err := rs.Err(); err != nil {
		return false, fmt.Errorf("journal: read states: %w", err)
	}
	return true, nil
}

// matcher is q's condition on the latest state (Query.where's, less the
// file) as a test of a kept row.
func (fs *fileStates) matcher(q Query) func(stateRow) bool {
	in := func(vals []string) []bool {
		if len(vals) == 0 {
			return nil
		}
		set := make([]bool, problemBit)
		for _, v := range vals {
			if c, ok := fs.codes[v]; ok {
				set[c] = true
			}
		}
		return set
	}
	var states, outcomes []string
	for _, s := range q.States {
		states = append(states, string(s))
	}
	for _, o := range q.Outcomes {
		outcomes = append(outcomes, string(o))
	}
	stSet, ocSet := in(states), in(outcomes)
	settled := in([]string{"final", "accepted"})
	badOutcome := in([]string{"failed", "cancelled"})
	return func(r stateRow) bool {
		st := r.state &^ problemBit
		if stSet != nil && !stSet[st] {
			return false
		}
		if ocSet != nil && !ocSet[r.outcome] {
			return false
		}
		if q.Attention && settled[st] && !badOutcome[r.outcome] && r.state&problemBit == 0 {
			return false
		}
		return true
	}
}

// pageRows finds, in the kept states, the first limit rows after q's
// AfterRow (in Rows' order: sheet, then row) that match q, and returns
// their source rows.
func (fs *fileStates) pageRows(q Query, limit int) []int {
	match := fs.matcher(q)
	out := []int{}
	for sc := range fs.sheets {
		i, _ := slices.BinarySearchFunc(fs.rows, stateRow{row: int32(min(q.AfterRow, 1<<31-2)) + 1, sheet: uint16(sc)}, cmpStateRow)
		for ; i < len(fs.rows) && int(fs.rows[i].sheet) == sc && len(out) < limit; i++ {
			if match(fs.rows[i]) {
				out = append(out, int(fs.rows[i].row))
			}
		}
	}
	return out
}

// pageFromStates finds the rows of the page of Rows' keyset read q in the
// kept states of its file (building them if need be) when state changes
// wait to be folded (pending) and q filters on the state; found is false
// when it did not look (the window query then finds them).
func (j *DuckDB) pageFromStates(ctx context.Context, q Query, pending bool) (rows []int, found bool, err error) {
	if !pending || !q.filtersState() || q.MerchantTxID != "" {
		return nil, false, nil
	}
	fs, err := j.states(ctx, q.SourceFile)
	if err != nil || fs == nil {
		return nil, false, err
	}
	x := &j.stateIdx
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.files[q.SourceFile] != fs {
		return nil, false, nil // dropped meanwhile
	}
	return fs.pageRows(q, q.Limit), true, nil
}
