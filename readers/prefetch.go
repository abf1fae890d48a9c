package readers

import (
	"io"
	"sync"

	"github.com/paybatch/paybatch"
)

// prefetcher reads rows from a source in its own goroutine, a batch ahead,
// so tokenising (CSV or sheet XML) on one core overlaps validation on the
// other. It owns that goroutine: close stops it and waits for it. Memory is
// bounded by the channel: at most prefetchDepth+2 batches of prefetchRows.
type prefetcher struct {
	src source
	// work, when set, is run by the reading goroutine on a batch it has
	// filled while the consumer still has batches waiting (so both cores
	// share the rows' parsing; see Batch.parseAhead). It fills b.parsed.
	work func(b *rowBatch)
	ch   chan *rowBatch
	free chan *rowBatch // consumed batches, reused so reading allocates little
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	cerr error
	cur  *rowBatch
	i    int
	// ahead says when work runs (tests hold every choice to one result);
	// batches counts the batches read, for aheadOdd.
	ahead   aheadMode
	batches int
	// at, when set, gives the position of the row src.next returned
	// last (a CSV read for Each: see Position); pos is the position of the
	// row nextParsed returned last.
	at  func() Position
	pos Position
}

const (
	prefetchRows  = 512
	prefetchDepth = 4
)

type rowBatch struct {
	rows  []int
	ends  []int // cells of row k are cells[ends[k-1]:ends[k]]
	cells []cell
	err   error      // after the rows: io.EOF at the end, or the fatal error
	text  []byte     // a borrowing source's block, the cells' text (see blockFiller)
	pos   []Position // where each row starts, when the source gives positions
	// parsed[k] is row k parsed by the reading goroutine (work), when
	// worked; ins[k] its instruction, when its rows are not borrowed.
	parsed []rowVerdict
	ins    []paybatch.Instruction
	worked bool
}

// blockFiller is a source that can fill a whole batch at once from a block
// of its text held in the batch (csvSource in borrowed mode).
type blockFiller interface {
	fill(b *rowBatch) bool
}

// newPrefetcher starts reading src ahead; at, when not nil, gives the
// position of each row read (see prefetcher.at): it is set before the
// reading goroutine starts, which reads it.
func newPrefetcher(src source, work func(*rowBatch), ahead aheadMode, at func() Position) *prefetcher {
	p := &prefetcher{src: src, work: work, ahead: ahead, at: at, ch: make(chan *rowBatch, prefetchDepth), free: make(chan *rowBatch, prefetchDepth+2), done: make(chan struct{})}
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *prefetcher) run() {
	defer p.wg.Done()
	for {
		var b *rowBatch
		select {
		case b = <-p.free:
			b.rows, b.ends, b.cells, b.parsed, b.ins, b.pos, b.worked = b.rows[:0], b.ends[:0], b.cells[:0], b.parsed[:0], b.ins[:0], b.pos[:0], false
		default:
			b = &rowBatch{
				rows:  make([]int, 0, prefetchRows),
				ends:  make([]int, 0, prefetchRows),
				cells: make([]cell, 0, prefetchRows*8),
			}
		}
		// One block of text per batch (the next block needs a buffer of
		// its own); rows one by one when the source is not filling blocks.
		if f, ok := p.src.(blockFiller); !ok || !f.fill(b) {
			p.readRows(b)
		}
		if p.work != nil && p.worksOn() {
			p.work(b)
			b.worked = true
		}
		select {
		case p.ch <- b:
		case <-p.done:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// worksOn says whether the reading goroutine parses the batch it just
// read: when the consumer has batches waiting (it is the slower side), or
// as a test's ahead says.
func (p *prefetcher) worksOn() bool {
	p.batches++
	switch p.ahead {
	case aheadAlways:
		return true
	case aheadOdd:
		return p.batches%2 == 1
	}
	return len(p.ch) > 0
}

func (p *prefetcher) readRows(b *rowBatch) {
	for len(b.rows) < prefetchRows {
		row, cells, err := p.src.next()
		if err != nil {
			b.err = err
			return
		}
		b.rows = append(b.rows, row)
		b.cells = append(b.cells, cells...)
		b.ends = append(b.ends, len(b.cells))
		if p.at != nil {
			b.pos = append(b.pos, p.at())
		}
	}
}

func (p *prefetcher) next() (int, []cell, error) {
	row, cells, _, _, err := p.nextParsed()
	return row, cells, err
}

// nextParsed is next, with the row as the reading goroutine parsed it
// (nil when it did not), and its instruction when it kept it.
func (p *prefetcher) nextParsed() (int, []cell, *rowVerdict, *paybatch.Instruction, error) {
	for {
		if p.cur != nil {
			if p.i < len(p.cur.rows) {
				row, cells := p.cur.rows[p.i], p.cur.row(p.i)
				if p.i < len(p.cur.pos) {
					p.pos = p.cur.pos[p.i]
				}
				var v *rowVerdict
				var in *paybatch.Instruction
				if p.cur.worked {
					v = &p.cur.parsed[p.i]
					if p.i < len(p.cur.ins) {
						in = &p.cur.ins[p.i]
					}
				}
				p.i++
				return row, cells, v, in, nil
			}
			if p.cur.err != nil {
				return 0, nil, nil, nil, p.cur.err
			}
		}
		b, ok := <-p.ch
		if !ok {
			return 0, nil, nil, nil, io.EOF
		}
		if p.cur != nil { // the caller is done with its cells: reuse the batch
			select {
			case p.free <- p.cur:
			default:
			}
		}
		p.cur, p.i = b, 0
	}
}

// row is the cells of row k.
func (b *rowBatch) row(k int) []cell {
	start := 0
	if k > 0 {
		start = b.ends[k-1]
	}
	return b.cells[start:b.ends[k]:b.ends[k]]
}

// close is idempotent: a second Close returns the first one's result.
func (p *prefetcher) close() error {
	p.once.Do(func() {
		close(p.done)
		p.wg.Wait()
		p.cerr = p.src.close()
	})
	return p.cerr
}
