package web

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/journal/journaltest"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/writers"
	"github.com/paybatch/paybatch/writers/smtptest"
)

// TestRoutesRoles walks every route of the app with every role (and
// nobody): a route is reached only with its permission; without a session
// a page redirects to sign-in and a POST is refused.
func TestRoutesRoles(t *testing.T) {
	h := newHarness(t)
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.csv", demoCSV(t))
	clients := map[string]*http.Client{"": h.client()}
	for _, name := range []string{"vic", "uma", "alex", "ada"} {
		clients[name] = h.signIn(name)
	}
	roleOf := map[string]Role{"": "", "vic": RoleViewer, "uma": RoleUploader, "alex": RoleApprover, "ada": RoleAdmin}
	for _, rt := range h.srv.routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.ReplaceAll(path, "{id}", fmt.Sprint(id))
		path = strings.ReplaceAll(path, "{name}", "vic")
		path = strings.ReplaceAll(path, "{$}", "")
		if path == "/static/" {
			path = "/static/style.css"
		}
		for _, who := range []string{"", "vic", "uma", "alex", "ada"} {
			c := clients[who]
			t.Run(fmt.Sprintf("%s %s as %q", method, path, who), func(t *testing.T) {
				var res response
				if method == http.MethodGet {
					res = h.get(c, path)
				} else {
					res = h.post(c, path, url.Values{"action": {"nothing"}})
				}
				if rt.pattern == "POST /logout" && who != "" {
					clients[who] = h.signIn(who) // signed out: sign in again for the next routes
				}
				allowed := allows(roleOf[who], rt.perm)
				switch {
				case rt.perm == permPublic:
					// Reachable by anyone; what it answers is tested elsewhere.
				case !allowed && who == "" && strings.HasSuffix(path, "/events"):
					if res.status != http.StatusUnauthorized {
						t.Fatalf("anonymous event stream: %d, want 401", res.status)
					}
				case allowed && (res.status == http.StatusUnauthorized || res.status == http.StatusForbidden):
					t.Fatalf("refused (%d) although %q has permission %s: %s", res.status, who, rt.perm, res.body)
				case !allowed && who == "" && method == http.MethodGet:
					if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/login") {
						t.Fatalf("anonymous GET: %d %s, want a redirect to /login", res.status, res.header.Get("Location"))
					}
				case !allowed && who == "":
					if res.status != http.StatusUnauthorized {
						t.Fatalf("anonymous POST: %d, want 401", res.status)
					}
				case !allowed:
					if res.status != http.StatusForbidden {
						t.Fatalf("%q without permission %s: %d, want 403", who, rt.perm, res.status)
					}
				}
			})
		}
	}
}

// TestCrossOriginRefused: a state-changing request from another site is
// refused before any handler runs (http.CrossOriginProtection).
func TestCrossOriginRefused(t *testing.T) {
	h := newHarness(t)
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.csv", demoCSV(t))
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example"},
	} {
		res := h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{}, hdr...)
		if res.status != http.StatusForbidden || !strings.Contains(res.body, "cross-origin") {
			t.Fatalf("%s: %d, want 403 cross-origin: %s", hdr[0], res.status, res.body)
		}
	}
	if b := h.batch(id); b.State != StateUploaded {
		t.Fatalf("state %s after refused requests, want uploaded", b.State)
	}
	// The same request from the app itself goes through.
	if res := h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{}, "Sec-Fetch-Site", "same-origin"); res.status != http.StatusSeeOther {
		t.Fatalf("same-origin submit: %d %s", res.status, res.body)
	}
}

func TestSecurityHeadersAndCookie(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	res := h.post(c, "/login", url.Values{"name": {"vic"}, "password": {testPassword}})
	ck := res.header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Max-Age="} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("cookie is Secure on plain HTTP (the browser would drop it): %q", ck)
	}
	page := h.get(c, "/")
	for k, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if !strings.Contains(page.header.Get(k), want) {
			t.Errorf("%s = %q, want %q", k, page.header.Get(k), want)
		}
	}
	if !strings.Contains(page.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP without frame-ancestors 'none'")
	}
	if strings.Contains(page.body, "<script>") || strings.Contains(page.body, "onclick") {
		t.Errorf("inline script on the page")
	}

	hs := newHarness(t, func(c *Config) { c.Secure = true })
	res = hs.post(hs.client(), "/login", url.Values{"name": {"vic"}, "password": {testPassword}})
	if !strings.Contains(res.header.Get("Set-Cookie"), "Secure") {
		t.Errorf("under TLS the cookie must be Secure: %q", res.header.Get("Set-Cookie"))
	}
}

// TestSessionExpiryLogoutRoleChange: a session ends at its expiry, at
// sign-out (the cookie is revoked on the server: replaying it fails) and
// when an admin changes the user's role.
func TestSessionExpiryLogoutRoleChange(t *testing.T) {
	h := newHarness(t)
	vic := h.signIn("vic")
	if res := h.get(vic, "/"); res.status != http.StatusOK {
		t.Fatalf("signed in: %d", res.status)
	}
	h.clock.Add(h.srv.cfg.SessionTTL + 1)
	if res := h.get(vic, "/"); res.status != http.StatusSeeOther {
		t.Fatalf("after expiry: %d, want a redirect to sign in", res.status)
	}

	vic = h.signIn("vic")
	u, _ := url.Parse(h.ts.URL)
	stolen := vic.Jar.Cookies(u)
	if res := h.post(vic, "/logout", nil); res.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.status)
	}
	replay := h.client()
	replay.Jar.SetCookies(u, stolen)
	if res := h.get(replay, "/"); res.status != http.StatusSeeOther {
		t.Fatalf("replayed cookie after logout: %d, want a redirect to sign in", res.status)
	}

	sam := h.signIn("sam")
	ada := h.signIn("ada")
	if res := h.post(ada, "/admin/users/sam", url.Values{"action": {"role"}, "role": {"viewer"}}); res.status != http.StatusSeeOther {
		t.Fatalf("role change: %d %s", res.status, res.body)
	}
	if res := h.get(sam, "/"); res.status != http.StatusSeeOther {
		t.Fatalf("session after role change: %d, want it revoked", res.status)
	}
}

func TestLoginThrottled(t *testing.T) {
	h := newHarness(t)
	c := h.client()
	for i := range 5 {
		if res := h.post(c, "/login", url.Values{"name": {"alex"}, "password": {"wrong password!"}}); res.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i, res.status)
		}
	}
	res := h.post(c, "/login", url.Values{"name": {"alex"}, "password": {testPassword}})
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("6th attempt with the right password: %d, want 429", res.status)
	}
	// A restart does not forgive: the failures are read back from the
	// server's database.
	again, err := New(h.srv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"name": {"alex"}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	again.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("after a restart, with the right password: %d, want 429", rec.Code)
	}
	h.clock.Add(16 * 60 * 1e9)
	if res := h.post(c, "/login", url.Values{"name": {"alex"}, "password": {testPassword}}); res.status != http.StatusSeeOther {
		t.Fatalf("after the window: %d, want signed in", res.status)
	}
	// Unknown user and wrong password answer alike.
	a := h.post(h.client(), "/login", url.Values{"name": {"nobody"}, "password": {"x"}})
	if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "wrong user name or password") {
		t.Fatalf("unknown user: %d", a.status)
	}
}

func TestPasswordHash(t *testing.T) {
	hash, err := HashPassword("s3cret password", DefaultKDF)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id with the default cost", hash)
	}
	if !VerifyPassword("s3cret password", hash) || VerifyPassword("s3cret passwore", hash) {
		t.Fatal("verify")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$YQ$YQ", "$argon2id$v=19$m=99999999,t=1,p=1$YQ$YQ"} {
		if VerifyPassword("x", bad) {
			t.Fatalf("%q verified", bad)
		}
	}
}

// TestUploadValidationPage: an XLSX with rejects through the same readers
// as the CLI: counts, totals in each currency's decimals, rejects grouped
// by reason with the card number masked, the preview, rejects.csv.
func testUploadValidationPage(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.xlsx", rejectsXLSX(t))
	b := h.batch(id)
	if b.Rows != 11 || b.Valid != 8 || b.Rejected != 3 || b.State != StateUploaded {
		t.Fatalf("batch: rows %d valid %d rejected %d state %s", b.Rows, b.Valid, b.Rejected, b.State)
	}
	page := h.get(uma, fmt.Sprintf("/batches/%d", id)).body
	for _, want := range []string{
		"<strong>11</strong> read", "<strong>3</strong> rejected",
		`160.52 <span class="ccy">USD</span>`, `5,000 <span class="ccy">JPY</span>`, `2.500 <span class="ccy">KWD</span>`,
		"the amount cannot be read exactly", "411111******1111",
		"The rows as they will be sent", "RF-1008", "Submit for approval", `name="valid_only"`,
		"Largest amounts",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("validation page lacks %q", want)
		}
	}
	if strings.Contains(page, "4111111111111111") {
		t.Error("an unmasked card number is on the page")
	}
	if strings.Contains(page, h.dir) {
		t.Error("the server's data directory is on the page")
	}
	rc := h.get(uma, fmt.Sprintf("/batches/%d/rejects.csv", id))
	recs, err := csv.NewReader(strings.NewReader(rc.body)).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("rejects.csv: %v, %d records:\n%s", err, len(recs), rc.body)
	}
	if strings.Contains(rc.body, "4111111111111111") {
		t.Error("unmasked card number in rejects.csv")
	}
	// Without "valid rows only", a batch with rejects cannot be submitted.
	if res := h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{}); res.status != http.StatusBadRequest {
		t.Fatalf("submit with rejects, not ticked: %d", res.status)
	}
	if res := h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{"valid_only": {"yes"}}); res.status != http.StatusSeeOther {
		t.Fatalf("submit valid rows only: %d %s", res.status, res.body)
	}
	if b := h.batch(id); b.State != StateAwaiting || !b.ValidOnly {
		t.Fatalf("after submit: %s valid_only=%v", b.State, b.ValidOnly)
	}
}

func TestSheetPicker(t *testing.T) {
	h := newHarness(t)
	uma := h.signIn("uma")
	f := excelize.NewFile()
	_ = f.SetSheetRow("Sheet1", "A1", &[]any{"notes"})
	_ = f.SetSheetRow("Sheet1", "A2", &[]any{"see the other sheet"})
	_, _ = f.NewSheet("Refunds")
	_ = f.SetSheetRow("Refunds", "A1", &[]any{"terminal", "transaction_reference_id", "order_reference_id", "merchant_transaction_id", "amount", "currency"})
	_ = f.SetSheetRow("Refunds", "A2", &[]any{"ABC123", "TXS00001", "ORS00001", "RF-1", "1.00", "USD"})
	var buf bytes.Buffer
	_ = f.Write(&buf)
	// The first sheet is not a batch: the error names the sheets.
	res := h.upload(uma, "refund", "two.xlsx", buf.Bytes())
	if res.status != http.StatusUnprocessableEntity {
		t.Fatalf("first sheet without columns: %d", res.status)
	}
	// Asked for by name, the other sheet is read.
	var body bytes.Buffer
	mw := newMultipart(&body, map[string]string{"kind": "refund", "sheet": "Refunds"}, "two.xlsx", buf.Bytes())
	req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/upload", &body)
	req.Header.Set("Content-Type", mw)
	r := h.do(uma, req)
	if r.status != http.StatusSeeOther {
		t.Fatalf("upload with sheet: %d %s", r.status, r.body)
	}
	var id int64
	fmt.Sscanf(r.header.Get("Location"), "/batches/%d", &id)
	b := h.batch(id)
	if b.Sheet != "Refunds" || b.Valid != 1 || len(b.Summary.Sheets) != 2 {
		t.Fatalf("batch sheet %q valid %d sheets %q", b.Sheet, b.Valid, b.Summary.Sheets)
	}
	page := h.get(uma, fmt.Sprintf("/batches/%d", id)).body
	if !strings.Contains(page, "Validate that sheet") {
		t.Error("no sheet picker for a two-sheet workbook")
	}
}

// TestHostileUploads: each ends as a clear error page, nothing is kept,
// and the server keeps serving.
func TestHostileUploads(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxUpload = 4 << 20 })
	uma := h.signIn("uma")
	wide := func() []byte {
		f := excelize.NewFile()
		sw, _ := f.NewStreamWriter("Sheet1")
		row := make([]any, 16384)
		for i := range row {
			row[i] = "col"
		}
		_ = sw.SetRow("A1", row)
		_ = sw.SetRow("A2", row)
		_ = sw.Flush()
		var buf bytes.Buffer
		_ = f.Write(&buf)
		return buf.Bytes()
	}()
	ole := append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, bytes.Repeat([]byte{0}, 4096)...)
	for _, tc := range []struct {
		name, file string
		content    []byte
		status     int
		want       string
	}{
		{"zip bomb", "bomb.xlsx", zipBomb(t), http.StatusUnprocessableEntity, "zip bomb"},
		{"16,384 columns", "wide.xlsx", wide, http.StatusUnprocessableEntity, "column"},
		{"renamed PDF", "batch.xlsx", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), http.StatusUnprocessableEntity, "PDF"},
		{"password-protected XLSX", "locked.xlsx", ole, http.StatusUnprocessableEntity, "password"},
		{"over the size cap", "big.csv", bytes.Repeat([]byte("a,b\n"), 2<<20), http.StatusRequestEntityTooLarge, "limit"},
		{"empty", "empty.csv", nil, http.StatusUnprocessableEntity, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.upload(uma, "refund", tc.file, tc.content)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			if !strings.Contains(strings.ToLower(res.body), strings.ToLower(tc.want)) {
				t.Fatalf("error page does not say %q: %s", tc.want, res.body)
			}
			if strings.Contains(res.body, h.dir) {
				t.Fatalf("error page shows the server's path")
			}
		})
	}
	if _, n, _ := h.store.Batches(context.Background(), "", 0, 0); n != 0 {
		t.Fatalf("%d batches kept from refused uploads", n)
	}
	if res := h.get(uma, "/"); res.status != http.StatusOK {
		t.Fatalf("server after hostile uploads: %d", res.status)
	}
}

func zipBomb(t *testing.T) []byte {
	f := excelize.NewFile()
	_ = f.SetCellStr("Sheet1", "A1", "x")
	var good bytes.Buffer
	_ = f.Write(&good)
	zr, err := zip.NewReader(bytes.NewReader(good.Bytes()), int64(good.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		w, _ := zw.Create(zf.Name)
		if zf.Name == "xl/worksheets/sheet1.xml" {
			io.WriteString(w, "<worksheet><sheetData>")
			sp := bytes.Repeat([]byte(" "), 1<<20)
			for range 80 {
				w.Write(sp)
			}
			io.WriteString(w, "</sheetData></worksheet>")
			continue
		}
		rc, _ := zf.Open()
		io.Copy(w, rc)
		rc.Close()
	}
	zw.Close()
	return out.Bytes()
}

// TestMakerChecker: nobody approves their own batch — no button, and the
// POST is refused — whatever their role; rejecting needs a comment.
func testMakerChecker(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.csv", demoCSV(t))
	if res := h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{}); res.status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", res.status, res.body)
	}
	// As an uploader: no approve button, POST refused by role.
	if page := h.get(uma, fmt.Sprintf("/batches/%d", id)).body; strings.Contains(page, `id="approve"`) {
		t.Fatal("the uploader sees an approve button")
	}
	if res := h.post(uma, fmt.Sprintf("/batches/%d/approve", id), url.Values{}); res.status != http.StatusForbidden {
		t.Fatalf("uploader approves: %d", res.status)
	}
	// Promoted to approver, still not their own batch.
	ada := h.signIn("ada")
	if res := h.post(ada, "/admin/users/uma", url.Values{"action": {"role"}, "role": {"approver"}}); res.status != http.StatusSeeOther {
		t.Fatalf("promote: %d", res.status)
	}
	uma = h.signIn("uma")
	page := h.get(uma, fmt.Sprintf("/batches/%d", id)).body
	if strings.Contains(page, `id="approve"`) || !strings.Contains(page, "another approver must decide") {
		t.Fatal("the uploader, now an approver, is offered to approve their own batch")
	}
	res := h.post(uma, fmt.Sprintf("/batches/%d/approve", id), url.Values{})
	if res.status != http.StatusForbidden || !strings.Contains(res.body, "another person must approve") {
		t.Fatalf("self-approval POST: %d %s", res.status, res.body)
	}
	alex := h.signIn("alex")
	if res := h.post(alex, fmt.Sprintf("/batches/%d/reject", id), url.Values{}); res.status != http.StatusBadRequest {
		t.Fatalf("reject without comment: %d", res.status)
	}
	if res := h.post(alex, fmt.Sprintf("/batches/%d/reject", id), url.Values{"comment": {"RF-1003 amount is wrong"}}); res.status != http.StatusSeeOther {
		t.Fatalf("reject: %d", res.status)
	}
	if b := h.batch(id); b.State != StateDeclined || b.Message != "RF-1003 amount is wrong" {
		t.Fatalf("after reject: %s %q", b.State, b.Message)
	}
	if n := len(h.sandbox.Operations()); n != 0 {
		t.Fatalf("%d operations executed for a rejected batch", n)
	}
}

// TestConcurrentApprovalsOneSubmission: two approvers at the same moment,
// each double-clicking, start one submission; every row is executed once.
func testConcurrentApprovalsOneSubmission(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.csv", demoCSV(t))
	h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{})
	alex, sam := h.signIn("alex"), h.signIn("sam")
	var wg sync.WaitGroup
	statuses := make(chan int, 4)
	for _, c := range []*http.Client{alex, sam, alex, sam} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- h.post(c, fmt.Sprintf("/batches/%d/approve", id), url.Values{"comment": {"ok"}}).status
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		switch s {
		case http.StatusSeeOther:
			ok++
		case http.StatusConflict:
		default:
			t.Fatalf("approve answered %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d approvals accepted, want exactly 1 (one approver needed)", ok)
	}
	b := h.waitFinished(id)
	if b.State != StateExceptions {
		t.Fatalf("state %s (%s), want done with exceptions (the demo batch has declines)", b.State, b.Message)
	}
	h.srv.send.mu.Lock()
	sendings := h.srv.send.sendings
	h.srv.send.mu.Unlock()
	if sendings != 1 {
		t.Fatalf("%d submissions started, want 1", sendings)
	}
	seen := map[string]int{}
	for _, op := range h.sandbox.Operations() {
		seen[op.Reference]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s executed %d times", id, n)
		}
	}
	if len(seen) != 8 {
		t.Errorf("%d operations executed, want 8: %v", len(seen), seen)
	}
}

// TestTwoApproversRace: above the threshold two approvals are needed; two
// approvers deciding at the same moment (the write-skew case) still start
// exactly one send, decided by the database.
func TestTwoApproversRace(t *testing.T) {
	for i := range 5 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Thresholds = map[string]int64{"USD": 100_00} })
			uma := h.signIn("uma")
			id := h.uploaded(uma, "refund", "refunds.csv", demoCSV(t))
			if b := h.batch(id); b.ApprovalsNeeded != 2 || !strings.Contains(b.Summary.Threshold, "USD total 160.52") {
				t.Fatalf("approvals needed %d: %s", b.ApprovalsNeeded, b.Summary.Threshold)
			}
			h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{})
			ctx := context.Background()
			var wg sync.WaitGroup
			res := make(chan Decision, 2)
			for _, name := range []string{"alex", "sam"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					u := h.users[name]
					d, err := h.store.Decide(ctx, id, Approval{BatchID: id, UserID: u.ID, User: u.Name, Approve: true, At: h.clock.Now()})
					if err != nil {
						t.Errorf("%s: %v", name, err)
					}
					res <- d
				}()
			}
			wg.Wait()
			close(res)
			started := 0
			for d := range res {
				if d.Started {
					started++
				}
			}
			if b := h.batch(id); started != 1 || b.Approvals != 2 || b.State != StateApproved {
				t.Fatalf("started %d, approvals %d, state %s; want 1, 2, approved", started, b.Approvals, b.State)
			}
		})
	}
}

// TestSendProgressOutcomesReport: approve → the engine sends → outcomes,
// downloads; report.xlsx reads back with excelize.
func testSendProgressOutcomesReport(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.xlsx", rejectsXLSX(t))
	h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{"valid_only": {"yes"}})
	alex := h.signIn("alex")
	if res := h.post(alex, fmt.Sprintf("/batches/%d/approve", id), url.Values{}); res.status != http.StatusSeeOther {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	// The live stream runs until the batch is finished.
	ev := h.get(alex, fmt.Sprintf("/batches/%d/events", id))
	if !strings.Contains(ev.header.Get("Content-Type"), "text/event-stream") || !strings.Contains(ev.body, `"percent":100`) || !strings.Contains(ev.body, `"finished":true`) {
		t.Fatalf("event stream: %s\n%s", ev.header.Get("Content-Type"), ev.body)
	}
	b := h.waitFinished(id)
	if b.State != StateExceptions {
		t.Fatalf("state %s: %s", b.State, b.Message)
	}
	vic := h.signIn("vic")
	page := h.get(vic, fmt.Sprintf("/batches/%d?outcome=declined", id)).body
	for _, want := range []string{"100% — finished", "declined (1)", "RF-1004", "report.xlsx", "sending finished"} {
		if !strings.Contains(page, want) {
			t.Errorf("batch page lacks %q", want)
		}
	}
	outcomes := page[strings.Index(page, `id="outcomes"`):]
	outcomes = outcomes[:strings.Index(outcomes, "</section>")]
	if strings.Contains(outcomes, "RF-1001") || !strings.Contains(outcomes, "RF-1004") {
		t.Error("the declined filter shows a succeeded row")
	}
	rep := h.get(vic, fmt.Sprintf("/batches/%d/report.xlsx", id))
	if rep.status != http.StatusOK || !strings.Contains(rep.header.Get("Content-Disposition"), fmt.Sprintf("batch-%d-", id)) {
		t.Fatalf("report.xlsx: %d %q", rep.status, rep.header.Get("Content-Disposition"))
	}
	x, err := excelize.OpenReader(strings.NewReader(rep.body))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got := x.GetSheetList(); len(got) < 3 || got[0] != "Summary" {
		t.Fatalf("report sheets %q", got)
	}
	rows, _ := x.GetRows("Rejected")
	if len(rows) != 4 {
		t.Errorf("Rejected sheet has %d rows, want header + 3", len(rows))
	}
	out := h.get(vic, fmt.Sprintf("/batches/%d/outcomes.csv", id))
	recs, _ := csv.NewReader(strings.NewReader(out.body)).ReadAll()
	if len(recs) != 9 {
		t.Fatalf("outcomes.csv: %d records", len(recs))
	}
	if n := len(h.sandbox.Operations()); n != 8 {
		t.Fatalf("%d operations executed, want 8", n)
	}

	// The same rows uploaded again: the approver is told they were sent.
	again := h.uploaded(uma, "refund", "refunds-again.csv", demoCSV(t))
	if w := strings.Join(h.batch(again).Summary.Warnings, "\n"); !strings.Contains(w, "8 ids were already sent in an earlier batch") {
		t.Errorf("warnings of a re-upload: %q", w)
	}
}

func TestWarnsIdsDifferingOnlyInCase(t *testing.T) {
	h := newHarness(t)
	uma := h.signIn("uma")
	csv := "terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n" +
		"ABC123,TXS00001,ORS00001,RF-77,1.00,USD\nABC123,TXS00002,ORS00002,rf-77,2.00,USD\n"
	id := h.uploaded(uma, "refund", "case.csv", []byte(csv))
	if w := strings.Join(h.batch(id).Summary.Warnings, "\n"); !strings.Contains(w, "differ only in upper/lower case") || !strings.Contains(w, "rf-77 (row 3)") {
		t.Errorf("warnings: %q", w)
	}
}

// TestWarnsIdsAlreadySentInLaterChunks: ids the journal holds from an
// earlier file are found wherever they sit in a large upload (the ids reach
// the journal in chunks, while the file is read), counted in full and the
// first named on the validation page; an upload repeating none of them gets
// no warning, and neither does one against a journal holding only other ids.
func TestWarnsIdsAlreadySentInLaterChunks(t *testing.T) {
	onBothJournals(t, testWarnsIdsAlreadySentInLaterChunks)
}

func testWarnsIdsAlreadySentInLaterChunks(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	const n = 3*idChunk + 17
	upload := func(name string, idOf func(i int) string) Batch {
		var b strings.Builder
		b.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
		for i := range n {
			fmt.Fprintf(&b, "ABC123,TX%06d,OR%06d,%s,1.00,USD\n", i, i, idOf(i))
		}
		bt := h.batch(h.uploaded(uma, "refund", name, []byte(b.String())))
		if bt.Valid != n {
			t.Fatalf("%s: %d valid of %d", name, bt.Valid, n)
		}
		return bt
	}
	fresh := func(i int) string { return fmt.Sprintf("fresh-%06d", i) }
	if w := upload("empty-journal.csv", fresh).Summary.Warnings; len(w) != 0 {
		t.Errorf("against an empty journal: %q", w)
	}
	// The journal holds three ids from an earlier file: one in the upload's
	// first chunk, two in its last, and one id no upload has.
	sent := map[int]bool{5: true, 3 * idChunk: true, n - 1: true}
	var rows []*journal.Row
	for i := range sent {
		rows = append(rows, journaltest.Row(i, 100))
		rows[len(rows)-1].MerchantTxID, rows[len(rows)-1].Source.File = fresh(i), "earlier.csv"
	}
	rows = append(rows, journaltest.Row(n+1, 100))
	rows[len(rows)-1].Source.File = "earlier.csv"
	if _, err := h.journal.Ingest(context.Background(), journaltest.Seq(rows...), time.Now()); err != nil {
		t.Fatal(err)
	}
	if w := upload("other-ids.csv", func(i int) string { return fmt.Sprintf("other-%06d", i) }).Summary.Warnings; len(w) != 0 {
		t.Errorf("no id repeated: %q", w)
	}
	bt := upload("repeats.csv", fresh)
	want := fmt.Sprintf("3 ids were already sent in an earlier batch (%s, %s, %s)", fresh(5), fresh(3*idChunk), fresh(n-1))
	if w := strings.Join(bt.Summary.Warnings, "\n"); !strings.Contains(w, want) {
		t.Errorf("warnings %q, want %q", w, want)
	}
	if page := h.get(uma, fmt.Sprintf("/batches/%d", bt.ID)).body; !strings.Contains(page, want) {
		t.Errorf("the validation page does not show %q", want)
	}
}

// TestResumeStoppedBatch: a send stopped by a refused credential stays
// "stopped"; once fixed, an approver resumes it and nothing is sent twice.
func testResumeStoppedBatch(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	var key atomic.Value
	key.Store("wrong key")
	h := newHarness(t, func(c *Config) {
		base := c.Credentials
		c.Credentials = func(p paybatch.Provider) job.Credentials {
			cr := base(p)
			cr.Secret = key.Load().(string)
			return cr
		}
	})
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.csv", demoCSV(t))
	h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{})
	alex := h.signIn("alex")
	h.post(alex, fmt.Sprintf("/batches/%d/approve", id), url.Values{})
	b := h.waitFinished(id)
	if b.State != StateStopped || !strings.Contains(b.Message, "SMARTRETRY_API_KEY") {
		t.Fatalf("with a refused key: %s %q", b.State, b.Message)
	}
	if page := h.get(alex, fmt.Sprintf("/batches/%d", id)).body; !strings.Contains(page, `id="resume"`) {
		t.Fatal("no resume button on a stopped batch")
	}
	key.Store(srsandbox.TestAPIKey)
	if res := h.post(alex, fmt.Sprintf("/batches/%d/resume", id), url.Values{}); res.status != http.StatusSeeOther {
		t.Fatalf("resume: %d %s", res.status, res.body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for h.batch(id).State != StateExceptions && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if b := h.batch(id); b.State != StateExceptions {
		t.Fatalf("after resume: %s %q", b.State, b.Message)
	}
	if n := len(h.sandbox.Operations()); n != 8 {
		t.Fatalf("%d operations, want 8", n)
	}
}

func newMultipart(w io.Writer, fields map[string]string, name string, content []byte) string {
	mw := multipart.NewWriter(w)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	return mw.FormDataContentType()
}

// TestDirectDebitDates: the preview shows the date Bacs will use, with the
// requested date beside it when SmarterPay moves it, and a warning says how
// many moved.
func testDirectDebitDates(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	// A Monday far enough ahead; its Saturday before is not a banking day.
	h.clock.t = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	uma := h.signIn("uma")
	csv := "Mandate,Amount,Collection Date,Reference,Description\n" +
		"M0000000000000001,25.32,2026-11-16,DD-0001,subscription\n" +
		"M0000000000000002,10.00,2026-11-14,DD-0002,annual fee\n"
	id := h.uploaded(uma, "dd-payment", "dd.csv", []byte(csv))
	b := h.batch(id)
	if b.Valid != 2 {
		t.Fatalf("valid %d: %+v", b.Valid, b.Summary.Groups)
	}
	if w := strings.Join(b.Summary.Warnings, "\n"); !strings.Contains(w, "1 collection dates are not collectable") {
		t.Errorf("warnings: %q", w)
	}
	page := h.get(uma, fmt.Sprintf("/batches/%d", id)).body
	for _, want := range []string{"<td>2026-11-16</td>", "2026-11-16 (requested 2026-11-14)", "Date Bacs will use"} {
		if !strings.Contains(page, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
}

// TestPreviewPagesWithoutDuplicates: the preview is written in the one
// validation pass; rows found at the end to repeat an id are taken out of
// it (and of the largest amounts), and every page — read by its offset in
// the page file — shows the rows after the ones before it.
func testPreviewPagesWithoutDuplicates(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	var b strings.Builder
	b.WriteString("terminal,transaction_reference_id,order_reference_id,merchant_transaction_id,amount,currency\n")
	for i := range 120 {
		id, amount := fmt.Sprintf("PG-%03d", i), fmt.Sprintf("%d.00", i+1)
		switch i {
		case 10, 70: // one id twice; the copy at row 72 is the largest amount
			id, amount = "PG-DUP", "9999.00"
		case 100:
			amount = "1.001" // a reject of its own
		}
		fmt.Fprintf(&b, "ABC123,TX%06d,OR%06d,%s,%s,USD\n", i, i, id, amount)
	}
	id := h.uploaded(uma, "refund", "pages.csv", []byte(b.String()))
	bt := h.batch(id)
	if bt.Rows != 120 || bt.Valid != 117 || bt.Rejected != 3 {
		t.Fatalf("rows %d valid %d rejected %d", bt.Rows, bt.Valid, bt.Rejected)
	}
	if l := bt.Summary.Largest; len(l) != 10 || l[0].MerchantTxID != "PG-119" || l[0].Minor != 12000 {
		t.Fatalf("largest %+v", l)
	}
	var rows []string
	for p := 1; p <= 3; p++ {
		page := h.get(uma, fmt.Sprintf("/batches/%d?preview=%d", id, p)).body
		sec := page[strings.Index(page, `id="preview"`):]
		sec = sec[:strings.Index(sec, "</section>")]
		for _, f := range strings.Split(sec, "<td>")[1:] {
			if strings.HasPrefix(f, "PG-") {
				rows = append(rows, f[:strings.Index(f, "<")])
			}
		}
		if p == 3 && !strings.Contains(sec, "Valid rows 101–117 of 117") {
			t.Errorf("page 3 caption: %s", sec)
		}
	}
	if len(rows) != 117 || slices.Contains(rows, "PG-DUP") || slices.Contains(rows, "PG-100") || rows[10] != "PG-011" || rows[116] != "PG-119" {
		t.Errorf("preview rows (%d): %v", len(rows), rows)
	}
}

// uploadLedger posts a ledger to the batch's reconcile form.
func (h *harness) reconcileWith(c *http.Client, id int64, name string, content []byte) response {
	h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if name != "" {
		fw, _ := mw.CreateFormFile("ledger", name)
		_, _ = fw.Write(content)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/batches/%d/reconcile", h.ts.URL, id), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return h.do(c, req)
}

// TestReconcileDownloadsEmail: a sent batch is reconciled against an
// uploaded ledger (the CLI's reconcile and report code): the page shows the
// category table and the chart; report.xlsx, the CSV, Parquet and JSON
// exports and the original download; the report is e-mailed to the
// configured recipients through a real SMTP server on loopback.
func testReconcileDownloadsEmail(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	sink := smtptest.Start(t)
	h := newHarness(t, func(c *Config) {
		c.Ledger = "" // nothing configured: the ledger is uploaded
		c.EmailTo = []string{"finance@example.com"}
		c.Mail = func(to []string) (writers.MailConfig, error) { return writers.MailConfigFromEnv(sink.Env(nil), to) }
	})
	uma := h.signIn("uma")
	id := h.uploaded(uma, "refund", "refunds.csv", demoCSV(t))
	h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{})
	alex := h.signIn("alex")
	h.post(alex, fmt.Sprintf("/batches/%d/approve", id), url.Values{})
	if b := h.waitFinished(id); b.State != StateDone && b.State != StateExceptions {
		t.Fatalf("state %s: %s", b.State, b.Message)
	}
	page := h.get(uma, fmt.Sprintf("/batches/%d", id)).body
	if !strings.Contains(page, "Not reconciled yet") || !strings.Contains(page, `id="reconcile-button"`) {
		t.Fatal("a sent batch without a ledger does not offer reconciliation")
	}
	if res := h.reconcileWith(uma, id, "", nil); res.status != http.StatusBadRequest || !strings.Contains(res.body, "choose a ledger") {
		t.Fatalf("reconcile without a ledger: %d", res.status)
	}
	if res := h.reconcileWith(uma, id, "ledger.pdf", []byte("%PDF-1.4 not a ledger")); res.status != http.StatusUnprocessableEntity || strings.Contains(res.body, h.dir) || !strings.Contains(res.body, "ledger.pdf") {
		t.Fatalf("reconcile with a PDF: %d %s", res.status, res.body)
	}
	lb, _ := fs.ReadFile(paybatch.DemoData(), "ledger.csv")
	if res := h.reconcileWith(uma, id, "november-ledger.csv", lb); res.status != http.StatusSeeOther {
		t.Fatalf("reconcile: %d %s", res.status, res.body)
	}
	vic := h.signIn("vic")
	page = h.get(vic, fmt.Sprintf("/batches/%d", id)).body
	for _, want := range []string{"Reconciled against the ledger <strong>november-ledger.csv</strong> by uma", `id="categories"`, "<svg", `class="bar-matched"`,
		"match rate", "report.xlsx", "summary.json", ".parquet", ".csv"} {
		if !strings.Contains(page, want) {
			t.Errorf("reconciled page lacks %q", want)
		}
	}
	if strings.Contains(page, `id="reconcile-button"`) {
		t.Error("a viewer is offered to reconcile")
	}
	// Every download answers, named <batch>-<date>-<what>.
	var links []string
	for _, part := range strings.Split(page, `href="`)[1:] {
		if l := part[:strings.Index(part, `"`)]; strings.HasPrefix(l, fmt.Sprintf("/batches/%d/", id)) && !strings.Contains(l, "?") && !strings.Contains(l, "#") {
			links = append(links, l)
		}
	}
	kinds := map[string]bool{}
	for _, l := range links {
		res := h.get(vic, l)
		if res.status != http.StatusOK || !strings.Contains(res.header.Get("Content-Disposition"), fmt.Sprintf("batch-%d-", id)) {
			t.Errorf("GET %s: %d %q", l, res.status, res.header.Get("Content-Disposition"))
		}
		kinds[path.Ext(l)] = true
		switch path.Ext(l) {
		case ".parquet":
			if !strings.HasPrefix(res.body, "PAR1") {
				t.Errorf("%s is not Parquet", l)
			}
		case ".json":
			if !json.Valid([]byte(res.body)) {
				t.Errorf("%s is not JSON", l)
			}
		case ".xlsx":
			x, err := excelize.OpenReader(strings.NewReader(res.body))
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			if got := x.GetSheetList(); got[0] != "Summary" {
				t.Errorf("report sheets %q", got)
			}
			x.Close()
		}
	}
	for _, k := range []string{".xlsx", ".csv", ".parquet", ".json", "", ".csv"} {
		if !kinds[k] {
			t.Errorf("no %q download among %q", k, links)
		}
	}
	if res := h.get(vic, fmt.Sprintf("/batches/%d/exports/..%%2Fjournal.duckdb", id)); res.status != http.StatusNotFound {
		t.Errorf("a path out of the exports: %d", res.status)
	}
	if res := h.post(uma, fmt.Sprintf("/batches/%d/email", id), url.Values{}); res.status != http.StatusSeeOther {
		t.Fatalf("e-mail: %d %s", res.status, res.body)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "finance@example.com" {
		t.Fatalf("mail: %+v", msgs)
	}
	if trail := h.get(vic, fmt.Sprintf("/batches/%d", id)).body; !strings.Contains(trail, "report e-mailed") || !strings.Contains(trail, "reconciled and report written") {
		t.Error("the audit trail lacks the reconciliation or the e-mail")
	}
}

// TestHeaderMappingUpload: a batch whose headers paybatch does not know is
// refused; with a header mapping (the CLI's --mapping format) uploaded
// beside it, it validates, and the server sends it through the same
// mapping.
func testHeaderMappingUpload(t *testing.T, newHarness func(testing.TB, ...func(*Config)) *harness) {
	h := newHarness(t)
	uma := h.signIn("uma")
	demo := strings.Split(strings.TrimSpace(string(demoCSV(t))), "\n")
	csv := "Till,Txn,Order,Cust Ref,Value,Ccy\n" + demo[1] + "\n" + demo[2] + "\n"
	mapping := "columns:\n  Till: terminal\n  Txn: transaction_reference_id\n  Order: order_reference_id\n  \"Cust Ref\": merchant_transaction_id\n  Value: amount\n  Ccy: currency\n"
	post := func(mapping string) response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("kind", "refund")
		fw, _ := mw.CreateFormFile("file", "custom.csv")
		_, _ = fw.Write([]byte(csv))
		if mapping != "" {
			mf, _ := mw.CreateFormFile("mapping", "mapping.yaml")
			_, _ = mf.Write([]byte(mapping))
		}
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, h.ts.URL+"/upload", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return h.do(uma, req)
	}
	if res := post(""); res.status < 400 || !strings.Contains(res.body, "merchant_transaction_id") {
		t.Fatalf("without a mapping: %d, want a refusal naming the missing column:\n%s", res.status, res.body)
	}
	if res := post("columns:\n  Till: no_such_field\n"); res.status != http.StatusBadRequest || !strings.Contains(res.body, "header mapping") {
		t.Fatalf("a bad mapping: %d:\n%s", res.status, res.body)
	}
	res := post(mapping)
	if res.status != http.StatusSeeOther {
		t.Fatalf("with the mapping: %d %s", res.status, res.body)
	}
	var id int64
	fmt.Sscanf(res.header.Get("Location"), "/batches/%d", &id)
	if b := h.batch(id); b.Valid != 2 || b.Rejected != 0 {
		t.Fatalf("valid %d rejected %d", b.Valid, b.Rejected)
	}
	h.post(uma, fmt.Sprintf("/batches/%d/submit", id), url.Values{})
	h.post(h.signIn("alex"), fmt.Sprintf("/batches/%d/approve", id), url.Values{})
	if b := h.waitFinished(id); b.State != StateDone && b.State != StateExceptions {
		t.Fatalf("state %s: %s", b.State, b.Message)
	}
	if n := len(h.sandbox.Operations()); n != 2 {
		t.Fatalf("%d operations executed, want 2", n)
	}
}
