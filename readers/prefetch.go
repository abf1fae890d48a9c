package readers

import (
	"io"
	"sync"
)

// prefetcher reads rows from a source in its own goroutine, a batch ahead,
// so tokenising (CSV or sheet XML) on one core overlaps validation on the
// other. It owns that goroutine: close stops it and waits for it. Memory is
// bounded by the channel: at most prefetchDepth+2 batches of prefetchRows.
type prefetcher struct {
	src  source
	ch   chan *rowBatch
	free chan *rowBatch // consumed batches, reused so reading allocates little
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	cerr error
	cur  *rowBatch
	i    int
}

const (
	prefetchRows  = 512
	prefetchDepth = 4
)

type rowBatch struct {
	rows  []int
	ends  []int // cells of row k are cells[ends[k-1]:ends[k]]
	cells []cell
	err   error  // after the rows: io.EOF at the end, or the fatal error
	text  []byte // a borrowing source's block, the cells' text (see blockFiller)
}

// blockFiller is a source that can fill a whole batch at once from a block
// of its text held in the batch (csvSource in borrowed mode).
type blockFiller interface {
	fill(b *rowBatch) bool
}

func newPrefetcher(src source) *prefetcher {
	p := &prefetcher{src: src, ch: make(chan *rowBatch, prefetchDepth), free: make(chan *rowBatch, prefetchDepth+2), done: make(chan struct{})}
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
			b.rows, b.ends, b.cells = b.rows[:0], b.ends[:0], b.cells[:0]
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
	}
}

func (p *prefetcher) next() (int, []cell, error) {
	for {
		if p.cur != nil {
			if p.i < len(p.cur.rows) {
				start := 0
				if p.i > 0 {
					start = p.cur.ends[p.i-1]
				}
				row, cells := p.cur.rows[p.i], p.cur.cells[start:p.cur.ends[p.i]:p.cur.ends[p.i]]
				p.i++
				return row, cells, nil
			}
			if p.cur.err != nil {
				return 0, nil, p.cur.err
			}
		}
		b, ok := <-p.ch
		if !ok {
			return 0, nil, io.EOF
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

// close is idempotent: a second Close returns the first one's result.
func (p *prefetcher) close() error {
	p.once.Do(func() {
		close(p.done)
		p.wg.Wait()
		p.cerr = p.src.close()
	})
	return p.cerr
}
