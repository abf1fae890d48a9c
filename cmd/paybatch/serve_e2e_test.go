package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser test's screenshots to docs/web/ (the README's finance quick start)")

// chromiumPath finds Debian's chromium (which .ci/run installs). Outside
// CI a machine without it skips the browser tests, saying so; under
// CI=true its absence fails them.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("browser test skipped: no chromium on PATH (apt-get install -y chromium); CI runs it")
	return ""
}

// e2eXLSX is the demo refunds as a workbook with three rows the readers
// refuse: too many decimals, a card number typed as the terminal, and an
// unknown currency.
func e2eXLSX(t *testing.T, path string) {
	t.Helper()
	raw, err := fs.ReadFile(paybatch.DemoData(), "refunds.csv")
	if err != nil {
		t.Fatal(err)
	}
	f := excelize.NewFile()
	defer f.Close()
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var rows [][]string
	for _, l := range lines {
		rows = append(rows, strings.Split(strings.TrimSpace(l), ","))
	}
	// New ids, so this batch is not the demo batch already in the journal.
	for i := 1; i < len(rows); i++ {
		rows[i][3] = strings.Replace(rows[i][3], "RF-", "WEB-", 1)
	}
	rows = append(rows,
		[]string{"ABC123", "TXS00001", "ORS00001", "WEB-2001", "12.345", "USD"},
		[]string{"4111111111111111", "TXS00002", "ORS00002", "WEB-2002", "1.00", "USD"},
		[]string{"ABC123", "TXS00003", "ORS00003", "WEB-2003", "3.00", "ZZZ"},
	)
	for i, r := range rows {
		vals := make([]any, len(r))
		for j, v := range r {
			vals[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

// e2eLedger is the demo ledger for the ids of e2eXLSX.
func e2eLedger(t *testing.T, path string) {
	t.Helper()
	raw, err := fs.ReadFile(paybatch.DemoData(), "ledger.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(raw), "RF-", "WEB-")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestServeInBrowser drives the finance flow in headless Chromium against
// `paybatch serve --demo` (the real server and the sandbox over HTTP): an
// uploader signs in, uploads an XLSX with rejects, reads the rejects and
// the preview, submits it for approval and cannot approve it (no button;
// the POST is refused); an approver approves it; progress reaches 100 %;
// the per-row outcomes show; the batch is reconciled against an uploaded
// ledger (category table and chart); report.xlsx downloads and reads back. Every
// page is screenshotted (-update-screenshots writes them to docs/web/).
func TestServeInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	dir := t.TempDir()
	base, _, _, _ := startServe(t, nil, "--demo", "--data-dir", filepath.Join(dir, "data"))

	shots := filepath.Join(dir, "shots")
	if *updateScreenshots {
		shots = filepath.Join("..", "..", "docs", "web")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	xlsx := filepath.Join(dir, "refunds-december.xlsx")
	e2eXLSX(t, xlsx)
	downloads := filepath.Join(dir, "downloads")
	if err := os.MkdirAll(downloads, 0o755); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	signIn := func(name string) {
		t.Helper()
		run("sign in as "+name,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`#name`)),
			chromedp.SendKeys(chromedp.CSS(`#name`), name),
			chromedp.SendKeys(chromedp.CSS(`#password`), demoPassword),
			chromedp.Submit(chromedp.CSS(`#password`)),
			chromedp.WaitVisible(chromedp.CSS(`.whoami`)),
		)
	}
	signOut := func() {
		t.Helper()
		run("sign out", chromedp.Click(chromedp.CSS(`.whoami button`)), chromedp.WaitVisible(chromedp.CSS(`#name`)))
	}

	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: new(true)}); err != nil {
		t.Fatalf("download folder: %v", err)
	}

	// The uploader.
	run("sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#name`)))
	shot("01-sign-in")
	signIn("uma")
	shot("02-batches")
	run("upload page", chromedp.Navigate(base+"/upload"), chromedp.WaitVisible(chromedp.CSS(`#file`)))
	run("choose the file",
		chromedp.SetValue(chromedp.CSS(`#kind`), "refund"),
		chromedp.SetUploadFiles(chromedp.CSS(`#file`), []string{xlsx}))
	shot("03-upload")
	run("upload", chromedp.Submit(chromedp.CSS(`#file`)), chromedp.WaitVisible(chromedp.CSS(`#rejects`)))
	url, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	page := text("main")
	for _, want := range []string{"11 read", "8 valid", "3 rejected", "the amount cannot be read exactly", "411111******1111",
		"The rows as they will be sent", "WEB-1008", "160.52", "5,000", "2.500"} {
		if !strings.Contains(page, want) {
			t.Errorf("validation page lacks %q", want)
		}
	}
	if strings.Contains(page, "4111111111111111") {
		t.Error("validation page shows a card number unmasked")
	}
	shot("04-validation")
	run("submit for approval",
		chromedp.Click(chromedp.CSS(`#valid_only`)),
		chromedp.Submit(chromedp.CSS(`#valid_only`)),
		chromedp.WaitVisible(chromedp.CSS(`.state-awaiting-approval`)))
	if buttons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#approve').length`)); err != nil || buttons != 0 {
		t.Fatal("the uploader is shown an approve button for their own batch")
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(
		`fetch(%q, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "comment=mine"}).then(r => r.status)`,
		url+"/approve"), chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Fatalf("the uploader's approve POST answered %d (%v), want 403", status, err)
	}
	signOut()

	// The approver.
	signIn("alex")
	run("batch page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#approve`)))
	shot("05-approval")
	run("approve",
		chromedp.SendKeys(chromedp.CSS(`#approve-comment`), "Checked against the December refund list."),
		chromedp.Click(chromedp.CSS(`#approve`)),
		chromedp.WaitVisible(chromedp.CSS(`#progress`)))
	shot("06-progress")
	// The page follows the live stream and reloads when the batch is done.
	run("finished", chromedp.WaitVisible(chromedp.CSS(`.state-done-with-exceptions`)), chromedp.WaitVisible(chromedp.CSS(`#outcomes`)))
	if p := text("#progress-text"); !strings.Contains(p, "100%") {
		t.Errorf("progress after sending: %q, want 100%%", p)
	}
	outcomes := text("#outcomes")
	for _, want := range []string{"succeeded (6)", "declined (1)", "failed (1)", "WEB-1004", "DECLINED"} {
		if !strings.Contains(outcomes, want) {
			t.Errorf("outcomes lack %q:\n%s", want, outcomes)
		}
	}
	shot("07-outcomes")
	run("filter declined", chromedp.Navigate(url+"?outcome=declined"), chromedp.WaitVisible(chromedp.CSS(`#outcomes table`)))
	if o := text("#outcomes table"); strings.Contains(o, "WEB-1001") || !strings.Contains(o, "WEB-1004") {
		t.Errorf("declined filter:\n%s", o)
	}
	// Reconcile against a ledger uploaded on the page (the same reconcile
	// and report code as `run`): the category table and chart, then the
	// report it wrote.
	ledger := filepath.Join(dir, "december-ledger.csv")
	e2eLedger(t, ledger)
	run("reconcile with a ledger",
		chromedp.Navigate(url+"#reconcile"),
		chromedp.WaitVisible(chromedp.CSS(`#ledger`)),
		chromedp.SetUploadFiles(chromedp.CSS(`#ledger`), []string{ledger}),
		chromedp.Submit(chromedp.CSS(`#ledger`)),
		chromedp.WaitVisible(chromedp.CSS(`#categories`)))
	recon := text("#reconcile")
	for _, want := range []string{"december-ledger.csv", "by alex", "match rate", "matched", "status_mismatch", "rejected_before_send", "summary.json"} {
		if !strings.Contains(recon, want) {
			t.Errorf("reconciliation lacks %q:\n%s", want, recon)
		}
	}
	if bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#reconcile svg rect').length`)); err != nil || bars == 0 {
		t.Errorf("no chart bars (%d, %v)", bars, err)
	}
	shot("08-reconcile")
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	run("download the report", chromedp.Click(chromedp.CSS(`#report-download`)))
	var got string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("report.xlsx did not download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			got = filepath.Join(downloads, ev.GUID)
			break
		}
	}
	rep, err := excelize.OpenFile(got)
	if err != nil {
		t.Fatalf("report.xlsx: %v", err)
	}
	defer rep.Close()
	if sheets := rep.GetSheetList(); len(sheets) < 3 || sheets[0] != "Summary" {
		t.Fatalf("report sheets %q", sheets)
	}
	rejected, _ := rep.GetRows("Rejected")
	if len(rejected) != 4 {
		t.Errorf("report Rejected sheet: %d rows, want header + 3", len(rejected))
	}
	var all bytes.Buffer
	for _, sh := range rep.GetSheetList() {
		rows, _ := rep.GetRows(sh)
		for _, r := range rows {
			all.WriteString(strings.Join(r, ",") + "\n")
		}
	}
	if strings.Contains(all.String(), "4111111111111111") {
		t.Error("report.xlsx holds an unmasked card number")
	}
	signOut()

	signIn("ada")
	run("admin", chromedp.Navigate(base+"/admin"), chromedp.WaitVisible(chromedp.CSS(`#new-name`)))
	shot("09-admin")
}
