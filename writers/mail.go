package writers

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paybatch/paybatch"
	mail "github.com/wneessen/go-mail"
)

// TLSMode is how the SMTP connection is protected.
type TLSMode string

const (
	// TLSStartTLS requires STARTTLS; the send fails if the server does not offer it.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit connects with TLS from the first byte (SMTPS, port 465).
	TLSImplicit TLSMode = "tls"
	// TLSNone sends in clear text; allowed only to a loopback host.
	TLSNone TLSMode = "none"
)

// DefaultMaxAttachment is the attachment cap when none is configured.
const DefaultMaxAttachment int64 = 10 << 20

// MailConfig is where and how to send the report. Secrets come from the
// environment only (MailConfigFromEnv); the password never appears in an
// error.
type MailConfig struct {
	Host     string
	Port     int // 0 → 465 for TLSImplicit, 587 otherwise
	Username string
	Password string
	From     string
	To       []string
	// MaxAttachment caps the attached workbook in bytes; over it only a
	// summary workbook is attached. 0 → DefaultMaxAttachment.
	MaxAttachment int64
	// TLS: "" picks TLSImplicit on port 465 and TLSStartTLS otherwise — except
	// to a loopback host, where STARTTLS is used when offered (a local relay).
	// TLSNone is refused unless Host is a loopback host.
	TLS TLSMode
	// TLSConfig overrides the TLS client settings (e.g. RootCAs of a private
	// relay). nil → system roots, ServerName = Host, TLS 1.2 minimum.
	TLSConfig *tls.Config
	// Timeout bounds the SMTP conversation; 0 → 30 s.
	Timeout time.Duration
}

// MailConfigFromEnv reads SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD,
// SMTP_FROM and the optional SMTP_TLS (starttls|tls|none) and
// SMTP_MAX_ATTACHMENT (bytes, or with a KiB/MiB suffix) through getenv.
func MailConfigFromEnv(getenv func(string) string, to []string) (MailConfig, error) {
	cfg := MailConfig{
		Host:     strings.TrimSpace(getenv("SMTP_HOST")),
		Username: getenv("SMTP_USERNAME"),
		Password: getenv("SMTP_PASSWORD"),
		From:     strings.TrimSpace(getenv("SMTP_FROM")),
		TLS:      TLSMode(strings.ToLower(strings.TrimSpace(getenv("SMTP_TLS")))),
	}
	for _, t := range to {
		for _, a := range strings.Split(t, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.To = append(cfg.To, a)
			}
		}
	}
	if p := strings.TrimSpace(getenv("SMTP_PORT")); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return MailConfig{}, fmt.Errorf("SMTP_PORT %q is not a port number (1-65535)", p)
		}
		cfg.Port = n
	}
	if s := strings.TrimSpace(getenv("SMTP_MAX_ATTACHMENT")); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return MailConfig{}, fmt.Errorf("SMTP_MAX_ATTACHMENT %q: %w", s, err)
		}
		cfg.MaxAttachment = n
	}
	if err := cfg.Validate(); err != nil {
		return MailConfig{}, err
	}
	return cfg, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000_000}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, errors.New("want a positive size in bytes, KiB or MiB (e.g. 10MiB)")
	}
	return n * mult, nil
}

// Validate checks the configuration, refusing clear-text SMTP to anything
// but a loopback host.
func (c MailConfig) Validate() error {
	if c.Host == "" {
		return errors.New("SMTP_HOST is not set: the e-mail needs an SMTP server")
	}
	if c.From == "" {
		return errors.New("SMTP_FROM is not set: the e-mail needs a sender address")
	}
	if len(c.To) == 0 {
		return errors.New("no e-mail recipients")
	}
	switch c.TLS {
	case "", TLSStartTLS, TLSImplicit:
	case TLSNone:
		if !paybatch.IsLoopbackHost(c.Host) {
			return fmt.Errorf("SMTP_HOST %q is not a loopback host: paybatch refuses to send reports over unencrypted SMTP; use STARTTLS (SMTP_TLS=starttls, usually port 587) or TLS (SMTP_TLS=tls, port 465)", c.Host)
		}
	default:
		return fmt.Errorf("SMTP_TLS %q: want starttls, tls or none (none only to a loopback host)", c.TLS)
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("set both SMTP_USERNAME and SMTP_PASSWORD, or neither")
	}
	return nil
}

// MailReport is what SendReport sends.
type MailReport struct {
	Run     paybatch.RunInfo
	Summary paybatch.Summary
	// XLSXPath is the full workbook to attach ("" → attach the summary only).
	XLSXPath string
	// ReportLocation is where the full report can be found (a path or URL),
	// said in the body when the workbook is over the attachment cap.
	// "" → XLSXPath.
	ReportLocation string
}

// SendReport e-mails the report: subject with the run date and headline
// numbers, a text and an HTML body with the summary table, and the workbook
// attached — or, when it is over cfg.MaxAttachment, a summary-only workbook
// and a sentence saying where the full report is.
func SendReport(ctx context.Context, cfg MailConfig, rep MailReport) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	msg, err := buildMessage(cfg, rep)
	if err != nil {
		return err
	}
	client, port, err := newMailClient(cfg)
	if err != nil {
		return cfg.redact(fmt.Errorf("smtp %s: %w", cfg.Host, err))
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return cfg.redact(fmt.Errorf("send report to %s via %s:%d: %w", strings.Join(cfg.To, ", "), cfg.Host, port, err))
	}
	return nil
}

// Server is where the mail goes, "host:port", as SendReport connects.
func (c MailConfig) Server() string {
	port := c.Port
	if port == 0 {
		port = 587
		if c.TLS == TLSImplicit {
			port = 465
		}
	}
	return fmt.Sprintf("%s:%d", c.Host, port)
}

// redact keeps the password out of an error's text (servers and libraries
// sometimes echo what they were sent). The redacted error does not unwrap,
// so the original text cannot be reached through it.
func (c MailConfig) redact(err error) error {
	if c.Password == "" || !strings.Contains(err.Error(), c.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.Password, "[redacted]"))
}

func newMailClient(cfg MailConfig) (*mail.Client, int, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts := []mail.Option{mail.WithTimeout(timeout)}
	mode := cfg.TLS
	if mode == "" && cfg.Port == 465 {
		mode = TLSImplicit
	}
	port := cfg.Port
	if port == 0 {
		port = 587
		if mode == TLSImplicit {
			port = 465
		}
	}
	tc := cfg.TLSConfig
	if tc == nil {
		tc = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	opts = append(opts, mail.WithTLSConfig(tc))
	switch {
	case mode == TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case mode == TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case mode == "" && paybatch.IsLoopbackHost(cfg.Host):
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	// Port last: WithSSL resets the port to 465.
	opts = append(opts, mail.WithPort(port))
	if cfg.Username != "" {
		// Off loopback the connection is always encrypted and go-mail picks
		// the strongest mechanism offered. A loopback relay may be clear
		// text, where go-mail's auto-discovery refuses PLAIN; PLAIN to
		// localhost is what such relays take.
		auth := mail.SMTPAuthAutoDiscover
		if paybatch.IsLoopbackHost(cfg.Host) {
			auth = mail.SMTPAuthPlain
		}
		opts = append(opts, mail.WithSMTPAuth(auth),
			mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	c, err := mail.NewClient(cfg.Host, opts...)
	return c, port, err
}

// MailSubject is the subject line: "paybatch 2026-11-22 smartretry refund:
// 1,234 rows, 12 exceptions, 98.9% matched".
func MailSubject(run paybatch.RunInfo, sum paybatch.Summary) string {
	h := HeadlineOf(sum)
	var b strings.Builder
	b.WriteString("paybatch")
	if !run.Started.IsZero() {
		b.WriteString(" " + run.Started.UTC().Format("2006-01-02"))
	}
	if run.Provider != "" {
		b.WriteString(" " + string(run.Provider))
	}
	if run.Kind != "" {
		b.WriteString(" " + string(run.Kind))
	}
	fmt.Fprintf(&b, ": %s rows, %s exceptions, %s matched",
		groupThousands(h.Rows), groupThousands(h.Exceptions), formatRate(h.MatchRate))
	return b.String()
}

func formatRate(r float64) string {
	return strconv.FormatFloat(r*100, 'f', 1, 64) + "%"
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// mailView is the data both bodies render.
type mailView struct {
	Subject    string
	Started    string
	RunID      string
	Provider   string
	Kind       string
	Version    string
	Inputs     []mailInput
	Categories []mailCategory
	Totals     []mailTotal
	MatchRate  string
	Note       string
	Attachment string
}

type mailInput struct{ Role, Path, SHA256, Rows string }
type mailCategory struct{ Name, Count, Totals string }
type mailTotal struct{ Currency, Ledger, Provider, Difference string }

func newMailView(rep MailReport, note, attachment string) mailView {
	v := mailView{
		Subject:    MailSubject(rep.Run, rep.Summary),
		RunID:      runID(rep.Run),
		Provider:   string(rep.Run.Provider),
		Kind:       string(rep.Run.Kind),
		Version:    rep.Run.Version,
		MatchRate:  formatRate(rep.Summary.MatchRate),
		Note:       note,
		Attachment: attachment,
	}
	if !rep.Run.Started.IsZero() {
		v.Started = rep.Run.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	for _, in := range RunInputs(rep.Run) {
		v.Inputs = append(v.Inputs, mailInput{in.Role, paybatch.MaskCardNumbers(in.Path), in.SHA256, groupThousands(int64(in.Rows))})
	}
	for _, c := range paybatch.Categories {
		ct := rep.Summary.Categories[c]
		var parts []string
		for _, code := range currencies(ct.Totals) {
			parts = append(parts, ct.Totals[code].String()+" "+code)
		}
		v.Categories = append(v.Categories, mailCategory{string(c), groupThousands(ct.Count), strings.Join(parts, ", ")})
	}
	diff := rep.Summary.Difference()
	for _, code := range currencies(rep.Summary.LedgerTotals, rep.Summary.ProviderTotals) {
		amt := func(t paybatch.Totals) string {
			if m, ok := t[code]; ok {
				return m.String()
			}
			return paybatch.Money{Currency: diff[code].Currency}.String()
		}
		v.Totals = append(v.Totals, mailTotal{code, amt(rep.Summary.LedgerTotals), amt(rep.Summary.ProviderTotals), amt(diff)})
	}
	return v
}

func (v mailView) text() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n\n", v.Subject)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Run started\t%s\nRun\t%s\nProvider\t%s\nKind\t%s\npaybatch\t%s\nMatch rate\t%s\n", v.Started, v.RunID, v.Provider, v.Kind, v.Version, v.MatchRate)
	for _, in := range v.Inputs {
		fmt.Fprintf(tw, "Input (%s)\t%s (%s rows, SHA-256 %s)\n", in.Role, in.Path, in.Rows, in.SHA256)
	}
	_ = tw.Flush()
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-24s %9s  %s\n", "Category", "Count", "Totals")
	for _, c := range v.Categories {
		fmt.Fprintf(&b, "%-24s %9s  %s\n", c.Name, c.Count, c.Totals)
	}
	b.WriteString("\n")
	w := len("Difference")
	for _, t := range v.Totals {
		w = max(w, len(t.Ledger), len(t.Provider), len(t.Difference))
	}
	fmt.Fprintf(&b, "%-8s  %*s  %*s  %*s\n", "Currency", w, "Ledger", w, "Provider", w, "Difference")
	for _, t := range v.Totals {
		fmt.Fprintf(&b, "%-8s  %*s  %*s  %*s\n", t.Currency, w, t.Ledger, w, t.Provider, w, t.Difference)
	}
	b.WriteString("\n")
	if v.Note != "" {
		b.WriteString(v.Note + "\n")
	}
	fmt.Fprintf(&b, "Attached: %s\n", v.Attachment)
	return b.String()
}

var mailHTML = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family:sans-serif">
<h2>{{.Subject}}</h2>
<table cellpadding="3">
<tr><th align="left">Run started</th><td>{{.Started}}</td></tr>
<tr><th align="left">Run</th><td>{{.RunID}}</td></tr>
<tr><th align="left">Provider</th><td>{{.Provider}}</td></tr>
<tr><th align="left">Kind</th><td>{{.Kind}}</td></tr>
<tr><th align="left">paybatch</th><td>{{.Version}}</td></tr>
<tr><th align="left">Match rate</th><td>{{.MatchRate}}</td></tr>
{{range .Inputs}}<tr><th align="left">Input ({{.Role}})</th><td>{{.Path}} ({{.Rows}} rows, SHA-256 <code>{{.SHA256}}</code>)</td></tr>
{{end}}</table>
<h3>Rows by category</h3>
<table border="1" cellpadding="3" style="border-collapse:collapse">
<tr><th>Category</th><th>Count</th><th>Totals</th></tr>
{{range .Categories}}<tr><td>{{.Name}}</td><td align="right">{{.Count}}</td><td align="right">{{.Totals}}</td></tr>
{{end}}</table>
<h3>Ledger vs provider</h3>
<table border="1" cellpadding="3" style="border-collapse:collapse">
<tr><th>Currency</th><th>Ledger</th><th>Provider</th><th>Difference</th></tr>
{{range .Totals}}<tr><td>{{.Currency}}</td><td align="right">{{.Ledger}}</td><td align="right">{{.Provider}}</td><td align="right">{{.Difference}}</td></tr>
{{end}}</table>
{{if .Note}}<p><strong>{{.Note}}</strong></p>{{end}}
<p>Attached: {{.Attachment}}</p>
</body></html>
`))

func buildMessage(cfg MailConfig, rep MailReport) (*mail.Msg, error) {
	limit := cfg.MaxAttachment
	if limit <= 0 {
		limit = DefaultMaxAttachment
	}
	var (
		attachName string
		attachBody []byte
		note       string
	)
	full := false
	if rep.XLSXPath != "" {
		st, err := os.Stat(rep.XLSXPath)
		if err != nil {
			return nil, fmt.Errorf("report attachment: %w", err)
		}
		if st.Size() <= limit {
			b, err := os.ReadFile(rep.XLSXPath)
			if err != nil {
				return nil, fmt.Errorf("report attachment: %w", err)
			}
			attachName, attachBody, full = filepath.Base(rep.XLSXPath), b, true
		} else {
			loc := rep.ReportLocation
			if loc == "" {
				loc = rep.XLSXPath
			}
			note = fmt.Sprintf("The full report (%s) is over the %s attachment limit, so only its summary is attached. The full report is at: %s",
				humanSize(st.Size()), humanSize(limit), loc)
		}
	}
	if !full {
		var buf bytes.Buffer
		if err := WriteSummaryXLSX(&buf, rep.Run, rep.Summary); err != nil {
			return nil, fmt.Errorf("summary attachment: %w", err)
		}
		attachBody = buf.Bytes()
		attachName = "paybatch-summary.xlsx"
		if rep.XLSXPath != "" {
			attachName = strings.TrimSuffix(filepath.Base(rep.XLSXPath), filepath.Ext(rep.XLSXPath)) + "-summary.xlsx"
		}
	}
	view := newMailView(rep, note, attachName)
	var html bytes.Buffer
	if err := mailHTML.Execute(&html, view); err != nil {
		return nil, fmt.Errorf("mail body: %w", err)
	}

	m := mail.NewMsg()
	if err := m.From(cfg.From); err != nil {
		return nil, fmt.Errorf("SMTP_FROM %q: %w", cfg.From, err)
	}
	if err := m.To(cfg.To...); err != nil {
		return nil, fmt.Errorf("e-mail recipients %q: %w", cfg.To, err)
	}
	m.Subject(view.Subject)
	m.SetDate()
	m.SetMessageID()
	m.SetBodyString(mail.TypeTextPlain, view.text())
	m.AddAlternativeString(mail.TypeTextHTML, html.String())
	if err := m.AttachReader(attachName, bytes.NewReader(attachBody),
		mail.WithFileContentType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")); err != nil {
		return nil, fmt.Errorf("attach %s: %w", attachName, err)
	}
	return m, nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
