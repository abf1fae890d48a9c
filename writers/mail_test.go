package writers

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/xuri/excelize/v2"
)

// smtpSink is a real SMTP server on loopback that keeps what it receives.
type smtpSink struct {
	mu    sync.Mutex
	msgs  []received
	auths []string
	addr  string
	port  string
}

type received struct {
	from string
	to   []string
	data []byte
}

type sinkSession struct {
	s   *smtpSink
	cur received
}

func (ss *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		ss.s.auths = append(ss.s.auths, user+":"+pass)
		if pass != "s3cret-pw" {
			return errors.New("invalid credentials")
		}
		return nil
	}), nil
}
func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error { ss.cur.from = from; return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.to = append(ss.cur.to, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.cur.data = b
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.cur)
	ss.s.mu.Unlock()
	ss.cur = received{}
	return nil
}
func (ss *sinkSession) Reset()        { ss.cur = received{} }
func (ss *sinkSession) Logout() error { return nil }

func startSMTP(t *testing.T) *smtpSink {
	t.Helper()
	sink := &smtpSink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: sink}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	sink.addr = ln.Addr().String()
	_, sink.port, _ = net.SplitHostPort(sink.addr)
	return sink
}

func (s *smtpSink) env(extra map[string]string) func(string) string {
	m := map[string]string{"SMTP_HOST": "127.0.0.1", "SMTP_PORT": s.port, "SMTP_FROM": "paybatch@example.com",
		"SMTP_USERNAME": "reports", "SMTP_PASSWORD": "s3cret-pw"}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

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
	sink := startSMTP(t)
	rep, _, _, _ := fixtureReport(t)
	path := filepath.Join(t.TempDir(), "report-2026-11-22.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	// An injection attempt in the HTML body: the input path is data.
	rep.Run.Inputs[0].Path = `/data/<script>alert("x")</script>&.xlsx`
	cfg, err := MailConfigFromEnv(sink.env(nil), []string{"finance@example.com, ops@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := SendReport(context.Background(), cfg, MailReport{Run: rep.Run, Summary: rep.Summary, XLSXPath: path}); err != nil {
		t.Fatal(err)
	}
	if len(sink.msgs) != 1 {
		t.Fatalf("server received %d messages", len(sink.msgs))
	}
	got := sink.msgs[0]
	if got.from != "paybatch@example.com" || strings.Join(got.to, ",") != "finance@example.com,ops@example.com" {
		t.Errorf("envelope from %q to %q", got.from, got.to)
	}
	if len(sink.auths) != 1 || sink.auths[0] != "reports:s3cret-pw" {
		t.Errorf("auth = %q", sink.auths)
	}
	p := parseMail(t, got.data)
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
	sink := startSMTP(t)
	rep, _, _, _ := fixtureReport(t)
	path := filepath.Join(t.TempDir(), "report.xlsx")
	if err := WriteXLSX(context.Background(), path, rep, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := MailConfigFromEnv(sink.env(map[string]string{"SMTP_MAX_ATTACHMENT": "1KiB"}), []string{"finance@example.com"})
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
	p := parseMail(t, sink.msgs[0].data)
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
	sink := startSMTP(t)
	cfg, err := MailConfigFromEnv(sink.env(map[string]string{"SMTP_TLS": "starttls"}), []string{"b@example.com"})
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
	if len(sink.msgs) != 0 || len(sink.auths) != 0 {
		t.Errorf("server got %d messages, %d auths", len(sink.msgs), len(sink.auths))
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
