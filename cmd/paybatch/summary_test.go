package main

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch/writers/smtptest"
)

// summaryFacts reads the Summary sheet back: its key/value lines and its
// input lines (role → file, rows, SHA-256).
func summaryFacts(t *testing.T, path string) (map[string]string, map[string][3]string) {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("Summary")
	if err != nil {
		t.Fatal(err)
	}
	kv, inputs := map[string]string{}, map[string][3]string{}
	inInputs := false
	for _, r := range rows {
		switch {
		case len(r) == 0:
			inInputs = false
		case r[0] == "Input":
			inInputs = true
		case inInputs:
			r = append(r, "", "", "") // GetRows drops empty trailing cells
			inputs[r[0]] = [3]string{r[1], r[2], r[3]}
		case len(r) >= 2:
			kv[r[0]] = r[1]
		}
	}
	return kv, inputs
}

// mailText returns a message's decoded subject and its text/plain body.
func mailText(t *testing.T, raw []byte) (string, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	var text string
	var walk func(r io.Reader, ctype, enc string)
	walk = func(r io.Reader, ctype, enc string) {
		mt, params, _ := mime.ParseMediaType(ctype)
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				walk(p, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"))
			}
		}
		if mt == "text/plain" && text == "" {
			if strings.EqualFold(enc, "quoted-printable") {
				r = quotedprintable.NewReader(r)
			}
			b, _ := io.ReadAll(r)
			text = string(b)
		}
	}
	walk(msg.Body, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"))
	return subject, text
}

// TestReportSummaryTellsTheRun is issue 16 finding 6: every report said the
// ledger has Rows 0; from `reconcile --journal` Provider and Kind were blank
// and the batch was the journal path with Rows 0; the e-mail repeated it and
// its subject had no provider or kind; a sent e-mail printed nothing.
func TestReportSummaryTellsTheRun(t *testing.T) {
	job, root := exampleJob(t)
	ts := demoSandbox(t)
	smtp := smtptest.Start(t)
	getenv := demoEnv(ts, smtp)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", job}, env{stdout: &stdout, stderr: &stderr, getenv: getenv})
	if exitCode(err) != exitExceptions {
		t.Fatalf("run: exit %d (%v)\n%s\n%s", exitCode(err), err, stdout.String(), stderr.String())
	}
	out := filepath.Join(root, "paybatch-out")
	batch := filepath.Join(root, "testdata", "demo", "refunds.csv")
	ledger := filepath.Join(root, "testdata", "demo", "ledger.csv")

	kv, inputs := summaryFacts(t, filepath.Join(out, "report.xlsx"))
	if kv["Provider"] != "smartretry" || kv["Kind"] != "refund" || kv["Run"] == "" {
		t.Errorf("run report: provider %q kind %q run %q", kv["Provider"], kv["Kind"], kv["Run"])
	}
	if in := inputs["batch"]; in[0] != batch || in[1] != "8" || len(in[2]) != 64 {
		t.Errorf("run report: batch input %q, want %s with 8 rows and its SHA-256", in, batch)
	}
	if in := inputs["ledger"]; in[0] != ledger || in[1] != "8" {
		t.Errorf("run report: ledger input %q, want %s with 8 rows", in, ledger)
	}
	if in := inputs["journal"]; in[1] != "8" {
		t.Errorf("run report: journal %q, want its 8 rows (inputs %q)", in, inputs)
	}

	report := filepath.Join(t.TempDir(), "recon.xlsx")
	stdout.Reset()
	stderr.Reset()
	err = run(context.Background(), []string{"reconcile", "--journal", filepath.Join(out, "journal.duckdb"), "--ledger", ledger,
		"--out", report, "--email-to", "finance@example.com"}, env{stdout: &stdout, stderr: &stderr, getenv: getenv})
	if exitCode(err) != exitExceptions {
		t.Fatalf("reconcile: exit %d (%v)\n%s\n%s", exitCode(err), err, stdout.String(), stderr.String())
	}
	kv, inputs = summaryFacts(t, report)
	if kv["Provider"] != "smartretry" || kv["Kind"] != "refund" {
		t.Errorf("reconcile --journal report: provider %q kind %q", kv["Provider"], kv["Kind"])
	}
	if in := inputs["batch"]; in[0] != batch || in[1] != "8" {
		t.Errorf("reconcile --journal report: batch %q, want %s with 8 rows (not the journal path)", in, batch)
	}
	if in := inputs["journal"]; !strings.HasSuffix(in[0], "journal.duckdb") || in[1] != "8" {
		t.Errorf("reconcile --journal report: journal %q", in)
	}
	if in := inputs["ledger"]; in[1] != "8" {
		t.Errorf("reconcile --journal report: ledger %q, want 8 rows", in)
	}
	if !strings.Contains(stdout.String()+stderr.String(), "e-mailed the report to finance@example.com via 127.0.0.1:") {
		t.Errorf("the CLI does not say where the mail went:\n%s\n%s", stdout.String(), stderr.String())
	}
	msgs := smtp.Messages()
	subject, body := mailText(t, msgs[len(msgs)-1].Data)
	if !strings.Contains(subject, "smartretry refund") {
		t.Errorf("subject %q lacks provider and kind", subject)
	}
	for _, want := range []string{"smartretry", "refund", batch, "8", kv["Run"]} {
		if !strings.Contains(body, want) {
			t.Errorf("mail body lacks %q:\n%s", want, body)
		}
	}
}
