package web

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/paybatch/paybatch"
)

// TestWritePreviewRecord: the preview record written field by field (no
// allocation per row) is the record of formatted strings the pages read,
// for a refund, a void without an amount, and a Direct Debit whose date
// Bacs moves; page 2 starts at record pageSize+1.
func TestWritePreviewRecord(t *testing.T) {
	d := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	cases := []struct {
		in   paybatch.Instruction
		bacs time.Time
		want []string
	}{
		{paybatch.Instruction{Kind: paybatch.KindRefund, MerchantTxID: "rf-1", Terminal: "ABC123", TransactionRef: "TX000001", OrderRef: "OR000001",
			Amount: paybatch.Money{Currency: paybatch.MustCurrency("KWD"), Minor: 1_234_567}, Source: paybatch.Source{Row: 1_048_576}},
			time.Time{}, []string{"1048576", "rf-1", "ABC123", "TX000001", "OR000001", "1234567", "KWD", "", "", ""}},
		{paybatch.Instruction{Kind: paybatch.KindVoid, MerchantTxID: "vd-1", Terminal: "ABC123", TransactionRef: "TX000002", OrderRef: "OR000002",
			Source: paybatch.Source{Row: 3}},
			time.Time{}, []string{"3", "vd-1", "ABC123", "TX000002", "OR000002", "", "", "", "", ""}},
		{paybatch.Instruction{Kind: paybatch.KindDDPayment, MerchantTxID: "dd-1", Mandate: "M0000000000000001", Description: "annual fee",
			Amount: paybatch.Money{Currency: paybatch.MustCurrency("GBP"), Minor: 1000}, CollectionDate: d("2026-11-14"), Source: paybatch.Source{Row: 2}},
			d("2026-11-16"), []string{"2", "dd-1", "M0000000000000001", "", "", "1000", "GBP", "2026-11-14", "2026-11-16", "annual fee"}},
	}
	path := filepath.Join(t.TempDir(), "preview.pages")
	pw, err := createPageFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if err := writePreview(pw, c.in, c.bacs); err != nil {
			t.Fatal(err)
		}
	}
	for i := len(cases); i < pageSize+1; i++ {
		if err := pw.add(strconv.Itoa(i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.close(); err != nil {
		t.Fatal(err)
	}
	recs, err := readPage(path, 1)
	if err != nil || len(recs) != pageSize {
		t.Fatalf("page 1: %d records, %v", len(recs), err)
	}
	for i, c := range cases {
		if !slices.Equal(recs[i], c.want) {
			t.Errorf("record %d = %q, want %q", i, recs[i], c.want)
		}
	}
	recs, err = readPage(path, 2)
	if err != nil || len(recs) != 1 || !slices.Equal(recs[0], []string{strconv.Itoa(pageSize), "x"}) {
		t.Fatalf("page 2: %q, %v", recs, err)
	}
}

// TestPageFileManyBuffers: records written across many of the writer's
// buffers (handed to its goroutine as they fill) read back in order, each
// page from its offset; a file that cannot be written (/dev/full) is an
// error from finish or close, not a short file taken for whole.
func TestPageFileManyBuffers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "many.pages")
	pw, err := createPageFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40_000 // ≈ 4 MB: some 16 buffers
	long := strings.Repeat("v", 90)
	for i := range n {
		pw.start(3)
		pw.int(int64(i))
		pw.field(long[:i%91])
		pw.date(time.Date(2026, 1, 1+i%300, 0, 0, 0, 0, time.UTC))
		if err := pw.finish(); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{1, 2, 397, n / pageSize} {
		recs, err := readPage(path, p)
		if err != nil || len(recs) != pageSize {
			t.Fatalf("page %d: %d records, %v", p, len(recs), err)
		}
		for k, rec := range recs {
			i := (p-1)*pageSize + k
			want := []string{strconv.Itoa(i), long[:i%91], time.Date(2026, 1, 1+i%300, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)}
			if !slices.Equal(rec, want) {
				t.Fatalf("page %d record %d = %q, want %q", p, k, rec, want)
			}
		}
	}
	if recs, err := readPage(path, n/pageSize+1); err != nil || len(recs) != 0 {
		t.Fatalf("past the end: %q, %v", recs, err)
	}

	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	pw, err = createPageFile("/dev/full")
	if err != nil {
		t.Fatal(err)
	}
	pw.path = filepath.Join(t.TempDir(), "full.pages") // where close would put the index
	var werr error
	for i := 0; i < n && werr == nil; i++ {
		werr = pw.add(long)
	}
	if cerr := pw.close(); cerr == nil || werr != nil && !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("writing to a full disk: finish %v, close %v", werr, cerr)
	}
}

// TestCopyOverlapped: the spool's copy writes exactly what it read, at
// sizes around its buffer's; a read error or a write error is its error.
func TestCopyOverlapped(t *testing.T) {
	const size = 1 << 20
	for _, n := range []int{0, 1, size - 1, size, size + 1, 3*size + size/2, 7 * size} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i*7 + i>>11)
		}
		var dst bytes.Buffer
		got, err := copyOverlapped(&dst, iotest.HalfReader(bytes.NewReader(src)))
		if err != nil || got != int64(n) || !bytes.Equal(dst.Bytes(), src) {
			t.Fatalf("%d bytes: copied %d (%d equal: %v), %v", n, got, dst.Len(), bytes.Equal(dst.Bytes(), src), err)
		}
	}
	boom := errors.New("connection reset")
	var dst bytes.Buffer
	if _, err := copyOverlapped(&dst, io.MultiReader(bytes.NewReader(make([]byte, 3*size)), iotest.ErrReader(boom))); !errors.Is(err, boom) {
		t.Fatalf("read error: %v", err)
	}
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer f.Close()
	if _, err := copyOverlapped(f, bytes.NewReader(make([]byte, 5*size))); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write error: %v", err)
	}
}
