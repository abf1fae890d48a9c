package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/readers"
)

// benchDir keeps the generated inputs between runs, under the system's
// temporary directory (/tmp), never in the repository.
func benchDir(b *testing.B) string {
	d := filepath.Join(os.TempDir(), "paybatch-web-bench")
	if err := os.MkdirAll(d, 0o755); err != nil {
		b.Fatal(err)
	}
	return d
}

// benchRow is refund row i: every 1000th has an amount with too many
// decimals (a reject), the rest are valid.
func benchRow(i int) []string {
	amount := strconv.Itoa(1+i%5000) + "." + fmt.Sprintf("%02d", i%100)
	if i%1000 == 999 {
		amount = "12.345"
	}
	return []string{"ABC123", fmt.Sprintf("TX%06d", i%1_000_000), fmt.Sprintf("OR%06d", i%1_000_000), fmt.Sprintf("bench-%07d", i), amount, "USD"}
}

var benchHeader = []string{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency"}

// benchCSV writes (once) n refund rows as CSV.
func benchCSV(b *testing.B, n int) string {
	p := filepath.Join(benchDir(b), fmt.Sprintf("refunds-%d.csv", n))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	f, err := os.Create(p + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "%s,%s,%s,%s,%s,%s\n", benchHeader[0], benchHeader[1], benchHeader[2], benchHeader[3], benchHeader[4], benchHeader[5])
	for i := range n {
		r := benchRow(i)
		fmt.Fprintf(w, "%s,%s,%s,%s,%s,%s\n", r[0], r[1], r[2], r[3], r[4], r[5])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if err := os.Rename(p+".tmp", p); err != nil {
		b.Fatal(err)
	}
	return p
}

// benchXLSX writes (once) n refund rows as a workbook, amounts as text
// cells the way finance types them.
func benchXLSX(b *testing.B, n int) string {
	p := filepath.Join(benchDir(b), fmt.Sprintf("refunds-%d.xlsx", n))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		b.Fatal(err)
	}
	row := make([]any, 6)
	for i := -1; i < n; i++ {
		cells := benchHeader
		if i >= 0 {
			cells = benchRow(i)
		}
		for j, c := range cells {
			row[j] = c
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(cell, row); err != nil {
			b.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.SaveAs(p + ".tmp.xlsx"); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(p+".tmp.xlsx", p); err != nil {
		b.Fatal(err)
	}
	return p
}

// multipartUpload is the upload form's body for the file at path.
func multipartUpload(b *testing.B, path string) (string, []byte) {
	content, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("kind", string(paybatch.KindRefund))
	fw, _ := mw.CreateFormFile("file", filepath.Base(path))
	_, _ = fw.Write(content)
	_ = mw.Close()
	return mw.FormDataContentType(), body.Bytes()
}

// processCPU is the CPU time this process has used (user + system, every
// thread: DuckDB's too).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serve runs one request through the server's handler in this process:
// server time only, no network.
func (h *harness) serve(b *testing.B, c *http.Client, method, target, ctype string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	u, _ := url.Parse(h.ts.URL)
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// paybatchBinary is the paybatch command for the CLI baseline: $PAYBATCH_BIN
// (build it first when measuring under the bench lock), else built here
// once into a temporary directory.
func paybatchBinary(b *testing.B) string {
	if p := os.Getenv("PAYBATCH_BIN"); p != "" {
		return p
	}
	p := filepath.Join(b.TempDir(), "paybatch")
	cmd := exec.Command("go", "build", "-o", p, "github.com/paybatch/paybatch/cmd/paybatch")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return p
}

// runValidateCLI runs `paybatch validate --kind refund path` as finance
// would — its default outputs: the totals on stdout, rejects.csv beside the
// file — and returns its wall time and CPU time (user + system, from the
// child's rusage). Exit status 1 (some rows rejected) is its normal end
// here.
func runValidateCLI(b *testing.B, bin, path string) (wall, cpu time.Duration) {
	cmd := exec.Command(bin, "validate", "--kind", "refund", path)
	cmd.Dir = filepath.Dir(path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	wall = time.Since(t0)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		b.Fatalf("paybatch validate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "rejects.csv") {
		b.Fatalf("paybatch validate wrote no rejects.csv:\n%s", out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return wall, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// spoolOnly is what the upload does with the bytes beyond validating
// them: the multipart body's file part read (the boundary scan) and
// written to a file in dir (the server's spool), then removed.
func spoolOnly(b *testing.B, s *Server, ctype string, body []byte) {
	_, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		b.Fatal(err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			b.Fatal(err)
		}
		if part.FormName() == "file" {
			tmp, err := s.spool(part)
			if err != nil {
				b.Fatal(err)
			}
			os.Remove(tmp)
			return
		}
	}
}

// side is one side of BenchmarkUploadValidation: its wall and CPU time per
// iteration.
type side struct{ wall, cpu []time.Duration }

func (s *side) add(wall, cpu time.Duration) {
	s.wall, s.cpu = append(s.wall, wall), append(s.cpu, cpu)
}

func mean(d []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t / time.Duration(len(d))
}

// medianRatio is the median over the iterations of a[i]/b[i].
func medianRatio(a, b []time.Duration) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = float64(a[i]) / float64(b[i])
	}
	slices.Sort(r)
	if len(r)%2 == 0 {
		return (r[len(r)/2-1] + r[len(r)/2]) / 2
	}
	return r[len(r)/2]
}

// BenchmarkUploadValidation compares upload → validation page in the
// server (the multipart POST: spool the file, validate it through the
// readers in one pass that also gathers the approver's facts and where each
// preview page starts, record the batch; then GET the validation page) with
// `paybatch validate` on the same file — #18's baseline: the CLI command,
// run as a child process (its wall time and its rusage), with its default
// outputs — and with readers.Validate alone in this process (stricter: no
// process start, no rejects.csv), in the same run, for a 1,000,000-row CSV
// and a 100,000-row XLSX. Target (#18): upload ≤ 1.5 × validate.
//
// Each iteration runs every side — readers.Validate, the CLI, the floor,
// the upload — so a change of load on this shared machine falls on all
// alike. The floor is what the upload cannot avoid beyond validating: the
// spool (the multipart part read and written to disk) after
// readers.Validate (which already takes the SHA-256, from the same bytes);
// floor-cpu-s/op is spool-cpu-s/op plus validate-cpu-s/op. Reported per
// side: mean wall and process CPU time (*-s/op, *-cpu-s/op); ratios of the
// means (ratio-*) and the median of the iterations' own ratios
// (ratio-*-median), which a burst of someone else's work in one iteration
// does not move.
func BenchmarkUploadValidation(b *testing.B) {
	bin := paybatchBinary(b)
	for _, in := range []struct {
		name string
		path func(*testing.B) string
	}{
		{"csv-1M", func(b *testing.B) string { return benchCSV(b, 1_000_000) }},
		{"xlsx-100k", func(b *testing.B) string { return benchXLSX(b, 100_000) }},
	} {
		b.Run(in.name, func(b *testing.B) {
			path := in.path(b)
			opts := readers.Options{Kind: paybatch.KindRefund, Rules: pipeline.RulesFor(paybatch.SmartRetry, time.Now), MaxFileSize: 1 << 30}
			h := newHarness(b, func(c *Config) { c.MaxUpload = 1 << 30 })
			uma := h.signIn("uma")
			ctype, body := multipartUpload(b, path)
			var validate, cli, spool, upload side
			for b.Loop() {
				t0, c0 := time.Now(), processCPU(b)
				if _, err := readers.Validate(context.Background(), []string{path}, opts); err != nil {
					b.Fatal(err)
				}
				t1, c1 := time.Now(), processCPU(b)
				validate.add(t1.Sub(t0), c1-c0)
				cli.add(runValidateCLI(b, bin, path))

				t0, c0 = time.Now(), processCPU(b)
				spoolOnly(b, h.srv, ctype, body)
				t1, c1 = time.Now(), processCPU(b)
				spool.add(t1.Sub(t0), c1-c0)

				t0, c0 = time.Now(), processCPU(b)
				rec := h.serve(b, uma, http.MethodPost, "/upload", ctype, body)
				if rec.Code != http.StatusSeeOther {
					b.Fatalf("upload: %d %s", rec.Code, rec.Body.String())
				}
				if rec := h.serve(b, uma, http.MethodGet, rec.Header().Get("Location"), "", nil); rec.Code != http.StatusOK {
					b.Fatalf("validation page: %d", rec.Code)
				}
				t1, c1 = time.Now(), processCPU(b)
				upload.add(t1.Sub(t0), c1-c0)
			}
			floorCPU := make([]time.Duration, len(spool.cpu))
			floorWall := make([]time.Duration, len(spool.cpu))
			for i := range floorCPU {
				floorCPU[i], floorWall[i] = validate.cpu[i]+spool.cpu[i], validate.wall[i]+spool.wall[i]
			}
			b.ReportMetric(0, "ns/op") // every side is reported below
			for _, m := range []struct {
				name string
				v    time.Duration
			}{
				{"validate", mean(validate.wall)}, {"validate-cpu", mean(validate.cpu)},
				{"cli", mean(cli.wall)}, {"cli-cpu", mean(cli.cpu)},
				{"spool", mean(spool.wall)}, {"spool-cpu", mean(spool.cpu)},
				{"upload", mean(upload.wall)}, {"upload-cpu", mean(upload.cpu)},
			} {
				b.ReportMetric(m.v.Seconds(), m.name+"-s/op")
			}
			ratio := func(a, c []time.Duration) float64 { return float64(mean(a)) / float64(mean(c)) }
			b.ReportMetric(ratio(upload.wall, validate.wall), "ratio-wall")
			b.ReportMetric(medianRatio(upload.wall, validate.wall), "ratio-wall-median")
			b.ReportMetric(ratio(upload.cpu, validate.cpu), "ratio-cpu")
			b.ReportMetric(ratio(upload.wall, cli.wall), "ratio-cli-wall")
			b.ReportMetric(medianRatio(upload.wall, cli.wall), "ratio-cli-wall-median")
			b.ReportMetric(ratio(upload.cpu, cli.cpu), "ratio-cli-cpu")
			b.ReportMetric(ratio(floorCPU, validate.cpu), "floor-ratio-cpu")
			b.ReportMetric(medianRatio(floorWall, validate.wall), "floor-ratio-wall-median")
			b.Logf("%s (%d iterations; target ≤ 1.5×): upload→validation page %v wall / %v CPU; `paybatch validate` (child) %v / %v → %.2f× wall (median %.2f×), %.2f× CPU; readers.Validate %v / %v → %.2f× wall (median %.2f×), %.2f× CPU; floor (readers.Validate + spool %v / %v) %.2f× CPU, %.2f× wall (median) of readers.Validate",
				in.name, len(upload.wall), mean(upload.wall), mean(upload.cpu),
				mean(cli.wall), mean(cli.cpu), ratio(upload.wall, cli.wall), medianRatio(upload.wall, cli.wall), ratio(upload.cpu, cli.cpu),
				mean(validate.wall), mean(validate.cpu), ratio(upload.wall, validate.wall), medianRatio(upload.wall, validate.wall), ratio(upload.cpu, validate.cpu),
				mean(spool.wall), mean(spool.cpu), ratio(floorCPU, validate.cpu), medianRatio(floorWall, validate.wall))
		})
	}
}

// BenchmarkPreviewPages1M renders the validation page of a
// 1,000,000-row CSV batch in server time at the first, a middle and the
// last page of its preview (read from the upload on demand: preview.go)
// and of its rejects, each viewed once before timing. Target (#18): every
// page < 200 ms. (BenchmarkBatchPages1M times the first and last again,
// beside the outcome pages.)
func BenchmarkPreviewPages1M(b *testing.B) {
	path := benchCSV(b, 1_000_000)
	h := newHarness(b, func(c *Config) { c.MaxUpload = 1 << 30 })
	uma := h.signIn("uma")
	ctype, body := multipartUpload(b, path)
	rec := h.serve(b, uma, http.MethodPost, "/upload", ctype, body)
	if rec.Code != http.StatusSeeOther {
		b.Fatalf("upload: %d %s", rec.Code, rec.Body.String())
	}
	loc := rec.Header().Get("Location")
	id, _ := strconv.ParseInt(filepath.Base(loc), 10, 64)
	bt := h.batch(id)
	lastPrev, lastRej := (bt.Valid+pageSize-1)/pageSize, (bt.Rejected+pageSize-1)/pageSize
	for _, p := range []struct {
		name       string
		prev, rejs int
	}{{"first", 1, 1}, {"middle", lastPrev / 2, lastRej / 2}, {"last", lastPrev, lastRej}} {
		target := fmt.Sprintf("%s?preview=%d&rejects=%d", loc, p.prev, p.rejs)
		t0 := time.Now()
		rec := h.serve(b, uma, http.MethodGet, target, "", nil)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", target, rec.Code)
		}
		if want := fmt.Sprintf("Valid rows %d–", (p.prev-1)*pageSize+1); !strings.Contains(rec.Body.String(), want) {
			b.Fatalf("%s lacks %q", target, want)
		}
		b.Logf("%s (preview page %d, rejects page %d): first view %v", p.name, p.prev, p.rejs, time.Since(t0))
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if rec := h.serve(b, uma, http.MethodGet, target, "", nil); rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", target, rec.Code)
				}
			}
		})
	}
}

// BenchmarkBatchPages1M renders the pages of a 1,000,000-row batch in
// server time: the first and last page of the rejects and of the preview
// while it awaits approval, then (its rows journaled, as after sending)
// the first outcomes page, a deep keyset page, a filtered one and an empty
// filter. The outcome index of the finished batch is counted in the
// background as the send finishes (as the sender does); the views while
// it is counted, how long it took, and each page's first view after it
// are logged; then each page is timed. Target (#18): every page < 200 ms,
// on a DuckDB journal and on a PostgreSQL one (skipped without a test
// cluster, see pgtest).
func BenchmarkBatchPages1M(b *testing.B) {
	for _, backend := range []string{"duckdb", "postgres"} {
		b.Run(backend, func(b *testing.B) { benchBatchPages1M(b, backend) })
	}
}

func benchBatchPages1M(b *testing.B, backend string) {
	const n = 1_000_000
	path := benchCSV(b, n)
	h := newHarnessOn(b, backend, func(c *Config) { c.MaxUpload = 1 << 30 })
	uma := h.signIn("uma")
	ctype, body := multipartUpload(b, path)
	t0 := time.Now()
	rec := h.serve(b, uma, http.MethodPost, "/upload", ctype, body)
	if rec.Code != http.StatusSeeOther {
		b.Fatalf("upload: %d %s", rec.Code, rec.Body.String())
	}
	loc := rec.Header().Get("Location")
	id, _ := strconv.ParseInt(filepath.Base(loc), 10, 64)
	bt := h.batch(id)
	b.Logf("uploaded %d rows (%d valid, %d rejected) in %v", bt.Rows, bt.Valid, bt.Rejected, time.Since(t0))
	lastPrev, lastRej := (bt.Valid+pageSize-1)/pageSize, (bt.Rejected+pageSize-1)/pageSize
	page := func(name, target string) {
		// Once outside the timing (the first view, logged).
		t0 := time.Now()
		if rec := h.serve(b, uma, http.MethodGet, target, "", nil); rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", target, rec.Code)
		}
		b.Logf("%s: first view %v", name, time.Since(t0))
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if rec := h.serve(b, uma, http.MethodGet, target, "", nil); rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", target, rec.Code)
				}
			}
		})
	}
	page("preview-first", loc)
	page("preview-last", fmt.Sprintf("%s?preview=%d&rejects=%d", loc, lastPrev, lastRej))

	// Journal the valid rows as a send would leave them, with a mix of
	// outcomes — but caught while sending: the rows from row 700,000 on
	// journaled pending, rows 700,000–899,999 then sent (an intent and an
	// outcome each, saved as the engine saves them and not yet flushed: on
	// DuckDB 400,000 state changes waiting to be folded), the batch
	// "sending". Its outcome pages are viewed (and timed) then; then the
	// rest is sent, the changes flushed, and the batch marked finished.
	ctx := context.Background()
	const sendFrom, sendingTo = 700_000, 900_000
	row := func(i int) *journal.Row {
		r := benchRow(i)
		minor, _ := strconv.ParseInt(r[4][:len(r[4])-3]+r[4][len(r[4])-2:], 10, 64)
		row := &journal.Row{Key: "pb1-bench-" + r[3], Provider: paybatch.SmartRetry, Kind: paybatch.KindRefund, Account: r[0],
			MerchantTxID: r[3], Amount: paybatch.Money{Currency: paybatch.MustCurrency("USD"), Minor: minor},
			BodySHA256: r[3], State: paybatch.StateFinal, Outcome: paybatch.OutcomeSucceeded,
			Source: paybatch.Source{File: bt.Path, Sheet: bt.Sheet, Row: i + 2}, CreatedAt: time.Now(), UpdatedAt: time.Now(),
			Method: "POST", Path: "/v1/payments/refund/ABC123", Terminal: r[0], TransactionRef: r[1], OrderRef: r[2]}
		if i%97 == 0 {
			row.State, row.Outcome, row.ProviderStatus = paybatch.StateDeclined, "", "DECLINED"
		}
		return row
	}
	var later []*journal.Row // the rows sent after the ingest, in their final state
	rows := func(yield func(*journal.Row, error) bool) {
		for i := range n {
			if i%1000 == 999 {
				continue
			}
			r := row(i)
			if i >= sendFrom {
				later = append(later, r)
				c := *r
				c.State, c.Outcome, c.ProviderStatus = paybatch.StatePending, "", ""
				r = &c
			}
			if !yield(r, nil) {
				return
			}
		}
	}
	t0 = time.Now()
	if _, err := h.journal.Ingest(ctx, iter.Seq2[*journal.Row, error](rows), time.Now()); err != nil {
		b.Fatal(err)
	}
	b.Logf("journaled %d rows in %v", bt.Valid, time.Since(t0))
	send := func(rs []*journal.Row) {
		for _, r := range rs {
			final := *r
			if backend == "duckdb" { // PostgreSQL takes an intent from the run set's holder only (claims)
				r.State, r.Outcome, r.ProviderStatus, r.Attempts = paybatch.StateSending, "", "", 1
				if err := h.journal.SaveLater(r); err != nil {
					b.Fatal(err)
				}
			}
			final.Attempts, final.UpdatedAt = 1, time.Now()
			if err := h.journal.SaveLater(&final); err != nil {
				b.Fatal(err)
			}
		}
	}
	sending := 0
	for sending < len(later) && later[sending].Source.Row < sendingTo+2 {
		sending++
	}
	t0 = time.Now()
	send(later[:sending])
	b.Logf("sent %d rows (state changes not flushed) in %v", sending, time.Since(t0))
	sb, err := h.store.Transition(ctx, id, []State{bt.State}, StateSending, "", AuditEvent{User: "bench", Action: "bench", At: time.Now()})
	if err != nil {
		b.Fatalf("batch %d in state %s: %v", id, h.batch(id).State, err)
	}
	if sb.State.Finished() {
		b.Fatal("a sending batch is finished")
	}
	// The first view is a page by state opened from a link, before any
	// page of every row of the batch was viewed.
	sendingPages := []struct{ name, target string }{
		{"sending-outcomes-failed-none-from-a-link", loc + "?outcome=failed"},
		{"sending-outcomes-first", loc},
		{"sending-outcomes-deep", loc + "?after=990000&opage=19800"},
		{"sending-outcomes-declined-deep", loc + "?outcome=declined&after=900000&opage=180"},
		{"sending-outcomes-pending-first", loc + "?outcome=pending"},
		{"sending-outcomes-failed-none", loc + "?outcome=failed"},
	}
	for _, p := range sendingPages {
		page(p.name, p.target)
	}
	send(later[sending:])
	if err := h.journal.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	fb, err := h.store.Transition(ctx, id, []State{StateSending}, StateExceptions, "", AuditEvent{User: "bench", Action: "bench", At: time.Now()})
	if err != nil {
		b.Fatalf("batch %d in state %s: %v", id, h.batch(id).State, err)
	}
	// As the sender does when a send finishes: the outcome index is
	// counted in the background. A viewer at that very moment gets keyset
	// pages (and no totals) until it is there; those views are logged.
	t0 = time.Now()
	h.srv.warmOutcomes(fb)
	outcomePages := []struct{ name, target string }{
		{"outcomes-first", loc},
		{"outcomes-deep", loc + "?after=990000&opage=19800"},
		{"outcomes-declined-deep", loc + "?outcome=declined&after=900000&opage=180"},
		{"outcomes-failed-none", loc + "?outcome=failed"},
	}
	for _, p := range outcomePages {
		t1 := time.Now()
		if rec := h.serve(b, uma, http.MethodGet, p.target, "", nil); rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", p.target, rec.Code)
		}
		b.Logf("%s: view while the outcome index is counted %v", p.name, time.Since(t1))
	}
	for x := h.srv.outcomeIndexOf(fb); x == nil || !isDone(x.done); x = h.srv.outcomeIndexOf(fb) {
		time.Sleep(time.Millisecond)
	}
	b.Logf("outcome index counted %v after the batch finished", time.Since(t0))
	for _, p := range outcomePages {
		page(p.name, p.target)
	}
}
