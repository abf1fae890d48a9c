// Package smtptest runs a real SMTP server on loopback for tests, the way
// net/http/httptest runs an HTTP one: it accepts PLAIN login with the
// password Password and keeps every message it receives.
package smtptest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Password is the only password the server accepts.
const Password = "s3cret-pw"

// Message is one received message.
type Message struct {
	From string
	To   []string
	Data []byte // the raw RFC 5322 message
}

// Server is a running SMTP server; it is closed by the test's cleanup.
type Server struct {
	Addr string // host:port on 127.0.0.1
	Port string

	mu    sync.Mutex
	msgs  []Message
	auths []string
}

// Start starts a server on 127.0.0.1 for the life of tb.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	s.Addr = ln.Addr().String()
	_, s.Port, _ = net.SplitHostPort(s.Addr)
	return s
}

// Messages returns what was received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Auths returns every "user:password" a client tried.
func (s *Server) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// Env returns a getenv with SMTP_* settings pointing at the server
// (user "reports", password Password), overridden by extra.
func (s *Server) Env(extra map[string]string) func(string) string {
	m := map[string]string{"SMTP_HOST": "127.0.0.1", "SMTP_PORT": s.Port, "SMTP_FROM": "paybatch@example.com",
		"SMTP_USERNAME": "reports", "SMTP_PASSWORD": Password}
	for k, v := range extra {
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

type session struct {
	s   *Server
	cur Message
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		ss.s.auths = append(ss.s.auths, user+":"+pass)
		if pass != Password {
			return errors.New("invalid credentials")
		}
		return nil
	}), nil
}
func (ss *session) Mail(from string, _ *smtp.MailOptions) error { ss.cur.From = from; return nil }
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.To = append(ss.cur.To, to)
	return nil
}
func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.cur.Data = b
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.cur)
	ss.s.mu.Unlock()
	ss.cur = Message{}
	return nil
}
func (ss *session) Reset()        { ss.cur = Message{} }
func (ss *session) Logout() error { return nil }
