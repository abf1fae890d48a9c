package writers

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/paybatch/paybatch/writers/smtptest"
)

// mailParts walks a received message: subject, text, HTML and attachments.
type mailParts struct {
	subject     string
	text, html  string
	attachments map[string][]byte
}

func parseMail(t *testing.T, raw []byte) mailParts {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	out := mailParts{subject: subj, attachments: map[string][]byte{}}
	var walk func(ct string, h map[string][]string, body io.Reader)
	walk = func(ct string, h map[string][]string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header, p)
			}
		}
		var r io.Reader = body
		switch strings.ToLower(mail.Header(h).Get("Content-Transfer-Encoding")) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		_, dp, _ := mime.ParseMediaType(mail.Header(h).Get("Content-Disposition"))
		switch {
		case dp["filename"] != "":
			out.attachments[dp["filename"]] = b
		case mt == "text/plain":
			out.text = string(b)
		case mt == "text/html":
			out.html = string(b)
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Header, msg.Body)
	return out
}

func TestSendReportOverLoopbackSMTP(t *testing.T) {
	sink := smtptest.Start(t)
	rep, _, _, _ := fixtureReport(t)
	path := filepath.Join(t.TempDir(), "report-2026-11-22.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	// An injection attempt in the HTML body: the input path is data.
	rep.Run.Inputs[0].Path = `/data/<script>alert("x")</script>&.xlsx`
	cfg, err := MailConfigFromEnv(sink.Env(nil), []string{"finance@example.com, ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := SendReport(context.Background(), cfg, MailReport{Run: rep.Run, Summary: rep.Summary, XLSXPath: path}); err != nil {
		t.Fatal(err)
	}
	if len(sink.Messages()) != 1 {
		t.Fatalf("server received %d messages", len(sink.Messages()))
	}
	got := sink.Messages()[0]
	if got.From != "paybatch@example.com" || strings.Join(got.To, ",") != "finance@example.com,ops@example.com" {
		t.Errorf("envelope from %q to %q", got.From, got.To)
	}
	if len(sink.Auths()) != 1 || sink.Auths()[0] != "reports:s3cret-pw" {
		t.Errorf("auth = %q", sink.Auths())
	}
	p := parseMail(t, got.Data)
	if p.subject != "paybatch 2026-11-22 smartretry refund: 20 rows, 17 exceptions, 15.0% matched" {
		t.Errorf("subject = %q", p.subject)
	}
	for _, s := range []string{"amount_mismatch", "120.50 USD", "999999999999.99 USD", "1000000000017.99", "15.0%",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "Attached: report-2026-11-22.xlsx"} {
		if !strings.Contains(p.text, s) {
			t.Errorf("text body lacks %q:\n%s", s, p.text)
		}
		if !strings.Contains(p.html, s) {
			t.Errorf("HTML body lacks %q", s)
		}
	}
	if strings.Contains(p.html, "<script>") || !strings.Contains(p.html, "&lt;script&gt;") {
		t.Errorf("HTML body does not escape data:\n%s", p.html)
	}
	att, ok := p.attachments["report-2026-11-22.xlsx"]
	if !ok || len(p.attachments) != 1 {
		t.Fatalf("attachments = %v", keys(p.attachments))
	}
	if !bytes.Equal(att, want) {
		t.Errorf("attachment differs from the workbook (%d vs %d bytes)", len(att), len(want))
	}
}

func TestSendReportOverCapAttachesSummary(t *testing.T) {
	sink := smtptest.Start(t)
	rep, _, _, _ := fixtureReport(t)
	path := filepath.Join(t.TempDir(), "report.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := MailConfigFromEnv(sink.Env(map[string]string{"SMTP_MAX_ATTACHMENT": "1KiB"}), []string{"finance@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxAttachment != 1024 {
		t.Fatalf("MaxAttachment = %d", cfg.MaxAttachment)
	}
	loc := "s3://reports/2026-11-22/report.xlsx"
	if err := SendReport(context.Background(), cfg, MailReport{Run: rep.Run, Summary: rep.Summary, XLSXPath: path, ReportLocation: loc}); err != nil {
		t.Fatal(err)
	}
	p := parseMail(t, sink.Messages()[0].Data)
	for _, body := range []string{p.text, p.html} {
		if !strings.Contains(body, "over the 1.0 KiB attachment limit") || !strings.Contains(body, loc) {
			t.Errorf("body does not say where the full report is:\n%s", body)
		}
	}
	att, ok := p.attachments["report-summary.xlsx"]
	if !ok {
		t.Fatalf("attachments = %v", keys(p.attachments))
	}
	f, err := excelize.OpenReader(bytes.NewReader(att))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); len(got) != 1 || got[0] != "Summary" {
		t.Errorf("summary attachment sheets = %q", got)
	}
}

func TestSendReportRequiresTLS(t *testing.T) {
	// Clear text to a non-loopback host is refused before any connection.
	for _, host := range []string{"smtp.example.com", "10.0.0.5", "localhost.example.com"} {
		env := map[string]string{"SMTP_HOST": host, "SMTP_PORT": "25", "SMTP_TLS": "none", "SMTP_FROM": "a@example.com",
			"SMTP_USERNAME": "u", "SMTP_PASSWORD": "hunter2-secret"}
		_, err := MailConfigFromEnv(func(k string) string { return env[k] }, []string{"b@example.com"})
		if err == nil || !strings.Contains(err.Error(), "not a loopback host") || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("%s: err = %v", host, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2-secret") {
			t.Errorf("password in error: %v", err)
		}
		cfg := MailConfig{Host: host, TLS: TLSNone, From: "a@example.com", To: []string{"b@example.com"}}
		if err := SendReport(context.Background(), cfg, MailReport{}); err == nil {
			t.Errorf("%s: SendReport sent in clear text", host)
		}
	}
	// STARTTLS is mandatory by default: a loopback server that does not offer
	// it is refused when STARTTLS is asked for, and the password stays out of
	// the error.
	sink := smtptest.Start(t)
	cfg, err := MailConfigFromEnv(sink.Env(map[string]string{"SMTP_TLS": "starttls"}), []string{"b@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	err = SendReport(context.Background(), cfg, MailReport{})
	if err == nil {
		t.Fatal("sent without STARTTLS")
	}
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("err = %v, want a STARTTLS refusal", err)
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("password in error: %v", err)
	}
	if len(sink.Messages()) != 0 || len(sink.Auths()) != 0 {
		t.Errorf("server got %d messages, %d auths", len(sink.Messages()), len(sink.Auths()))
	}
}

func TestMailConfigFromEnvErrors(t *testing.T) {
	base := map[string]string{"SMTP_HOST": "smtp.example.com", "SMTP_FROM": "a@example.com", "SMTP_PASSWORD": "pw-XYZ", "SMTP_USERNAME": "u"}
	for _, tc := range []struct {
		set  map[string]string
		to   []string
		want string
	}{
		{map[string]string{"SMTP_HOST": ""}, []string{"x@example.com"}, "SMTP_HOST is not set"},
		{map[string]string{"SMTP_FROM": ""}, []string{"x@example.com"}, "SMTP_FROM is not set"},
		{nil, nil, "no e-mail recipients"},
		{map[string]string{"SMTP_PORT": "pw-XYZ"}, []string{"x@example.com"}, "not a port number"},
		{map[string]string{"SMTP_TLS": "maybe"}, []string{"x@example.com"}, "want starttls, tls or none"},
		{map[string]string{"SMTP_USERNAME": ""}, []string{"x@example.com"}, "set both SMTP_USERNAME and SMTP_PASSWORD"},
		{map[string]string{"SMTP_MAX_ATTACHMENT": "lots"}, []string{"x@example.com"}, "SMTP_MAX_ATTACHMENT"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.set {
			env[k] = v
		}
		_, err := MailConfigFromEnv(func(k string) string { return env[k] }, tc.to)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.set, err, tc.want)
		}
	}
	cfg, err := MailConfigFromEnv(func(k string) string { return base[k] }, []string{"x@example.com"})
	if err != nil || cfg.Port != 0 || cfg.TLS != "" || cfg.MaxAttachment != 0 {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
