package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/paybatch/paybatch/pipeline/sandbox/sandboxtest"
	"github.com/paybatch/paybatch/writers/smtptest"
)

// TestRunKilledAtEveryStepDeliversOnce is #16's "a run is done when its
// report is delivered": `paybatch run` (the real process) is SIGKILLed
// during each step — submit (a request executed at the provider whose
// answer never came back), poll, reconcile, report writing and e-mail —
// and the next run must deliver exactly one report and one e-mail for the
// input, execute every operation exactly once, and the metrics file must
// record a success only after that. The kill points are deterministic: the
// sandbox or the SMTP server holds a request until the process is killed,
// or the process pauses at a checkpoint (TestMain's PAYBATCH_TEST_PAUSE_AT).
func TestRunKilledAtEveryStepDeliversOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, step := range []string{"submit", "poll", "reconcile", "report", "email"} {
		t.Run(step, func(t *testing.T) { killAndRerun(t, step) })
	}
}

func killAndRerun(t *testing.T, step string) {
	job, root := exampleJob(t, [2]string{"to: []", "to: [finance@example.com]"})
	out := filepath.Join(root, "paybatch-out")
	gate := newGate(t, demoSandbox(t))
	mail := startHoldingSMTP(t)
	switch step {
	case "submit":
		gate.holdPOST.Store(3) // the 3rd payment request executes; its answer never comes back
	case "poll":
		gate.holdGET.Store(true)
	case "email":
		mail.hold.Store(true)
	}
	env := []string{"PAYBATCH_TEST_MAIN=1", "SMARTRETRY_API_KEY=sr_test_key", "SMARTRETRY_BASE_URL=" + gate.URL,
		"SMTP_HOST=127.0.0.1", "SMTP_PORT=" + mail.port, "SMTP_FROM=paybatch@example.com",
		"SMTP_USERNAME=reports", "SMTP_PASSWORD=" + smtptest.Password}

	// First run: killed at the step.
	cmd := exec.Command(os.Args[0], "run", "--config", job)
	cmd.Env = append(os.Environ(), env...)
	if step == "reconcile" || step == "report" {
		cmd.Env = append(cmd.Env, "PAYBATCH_TEST_PAUSE_AT="+step)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	paused := make(chan struct{})
	var errText strings.Builder
	var errDone sync.WaitGroup
	errDone.Add(1)
	go func() {
		defer errDone.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "paused at ") {
				close(paused)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { errDone.Wait(); exited <- cmd.Wait() }()
	var at <-chan struct{}
	switch step {
	case "submit", "poll":
		at = gate.held
	case "email":
		at = mail.held
	default:
		at = paused
	}
	select {
	case <-at:
	case err := <-exited:
		t.Fatalf("run ended (%v) before reaching %s\nstdout:\n%s\nstderr:\n%s", err, step, stdout.String(), errText.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run never reached %s\nstdout:\n%s", step, stdout.String())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-exited
	gate.release()
	mail.release()

	if got := len(mail.Messages()); got != 0 {
		t.Fatalf("killed during %s: %d mails delivered, want 0", step, got)
	}
	if m, err := os.ReadFile(filepath.Join(out, "paybatch.prom")); err == nil && strings.Contains(string(m), "paybatch_last_success_timestamp_seconds") {
		t.Fatalf("killed during %s: the metrics file records a success:\n%s", step, m)
	}

	// Second run: carries the killed run to its end.
	second := exec.Command(os.Args[0], "run", "--config", job)
	second.Env = append(os.Environ(), env...)
	var out2, err2 bytes.Buffer
	second.Stdout, second.Stderr = &out2, &err2
	err = second.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitExceptions {
		t.Fatalf("rerun after a kill during %s: %v, want exit 1 (the demo has exceptions)\nstdout:\n%s\nstderr:\n%s", step, err, out2.String(), err2.String())
	}
	perID := map[string]int{}
	for _, op := range gate.ts.Server.Operations() {
		perID[op.Reference]++
	}
	for _, id := range []string{"RF-1001", "RF-1002", "RF-1003", "RF-1004", "RF-1005", "RF-1006", "RF-1007", "RF-1008"} {
		if perID[id] != 1 {
			t.Errorf("%s executed %d times, want exactly once (%v)", id, perID[id], perID)
		}
	}
	msgs := mail.Messages()
	if len(msgs) != 1 {
		t.Fatalf("after the rerun: %d mails, want exactly 1\nstdout:\n%s", len(msgs), out2.String())
	}
	dated, _ := filepath.Glob(filepath.Join(out, "report-*.xlsx"))
	if len(dated) != 1 {
		t.Fatalf("dated reports %v, want exactly one", dated)
	}
	latest, err := os.ReadFile(filepath.Join(out, "report.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(dated[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, att := readMail(t, msgs[0].Data); !bytes.Equal(att, kept) || !bytes.Equal(latest, kept) {
		t.Errorf("the mailed report, %s and report.xlsx differ", dated[0])
	}
	prom, err := os.ReadFile(filepath.Join(out, "paybatch.prom"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^paybatch_last_success_timestamp_seconds \S+$`).Match(prom) ||
		!regexp.MustCompile(`(?m)^paybatch_last_run_success 1$`).Match(prom) {
		t.Errorf("metrics after the delivered run do not record a success:\n%s", prom)
	}

	// Third run: done means done.
	third := exec.Command(os.Args[0], "run", "--config", job)
	third.Env = append(os.Environ(), env...)
	var out3 bytes.Buffer
	third.Stdout, third.Stderr = &out3, &out3
	if err := third.Run(); err != nil {
		t.Fatalf("third run: %v\n%s", err, out3.String())
	}
	if !strings.Contains(out3.String(), "already processed") {
		t.Errorf("third run does not say the input was processed:\n%s", out3.String())
	}
	if n := len(mail.Messages()); n != 1 {
		t.Errorf("third run mailed again (%d mails)", n)
	}
	if d, _ := filepath.Glob(filepath.Join(out, "report-*.xlsx")); len(d) != 1 {
		t.Errorf("third run wrote a report: %v", d)
	}
}

// gate fronts the sandbox and holds requests: the holdPOST-th payment
// request is executed by the sandbox but its answer is held, and every
// later one is held before it reaches the sandbox; with holdGET the first
// status query is held. held is closed when the first request is held; a
// held request is let go when its client goes away or at release.
type gate struct {
	URL      string
	ts       *sandboxtest.Server
	holdPOST atomic.Int64
	holdGET  atomic.Bool
	posts    atomic.Int64
	held     chan struct{}
	once     sync.Once
	free     chan struct{}
	freeOnce sync.Once
}

func newGate(t *testing.T, ts *sandboxtest.Server) *gate {
	g := &gate{ts: ts, held: make(chan struct{}), free: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	g.URL = srv.URL
	t.Cleanup(func() { g.release(); srv.Close() }) // before the sandbox's cleanup
	return g
}

func (g *gate) release() { g.freeOnce.Do(func() { close(g.free) }) }

func (g *gate) hold(r *http.Request) {
	g.once.Do(func() { close(g.held) })
	select {
	case <-r.Context().Done():
	case <-g.free:
	}
}

func (g *gate) serve(w http.ResponseWriter, r *http.Request) {
	select {
	case <-g.free:
		g.ts.Server.ServeHTTP(w, r)
		return
	default:
	}
	switch {
	case r.Method == http.MethodPost && g.holdPOST.Load() > 0:
		n := g.posts.Add(1)
		switch {
		case n == g.holdPOST.Load():
			g.ts.Server.ServeHTTP(httptest.NewRecorder(), r) // executed; the answer is lost
			g.hold(r)
			return
		case n > g.holdPOST.Load():
			g.hold(r)
			return
		}
	case r.Method == http.MethodGet && g.holdGET.Load():
		g.hold(r)
		return
	}
	g.ts.Server.ServeHTTP(w, r)
}

// holdingSMTP is a loopback SMTP server (PLAIN login, password
// smtptest.Password) that, while hold is set, stops at the start of a
// message's data until the client goes away: the message is never
// accepted.
type holdingSMTP struct {
	port     string
	hold     atomic.Bool
	held     chan struct{}
	once     sync.Once
	free     chan struct{}
	freeOnce sync.Once
	mu       sync.Mutex
	msgs     []smtptest.Message
}

func startHoldingSMTP(t *testing.T) *holdingSMTP {
	t.Helper()
	h := &holdingSMTP{held: make(chan struct{}), free: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &holdSession{h: h}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { h.release(); _ = srv.Close() })
	_, h.port, _ = net.SplitHostPort(ln.Addr().String())
	return h
}

// release lets a held message go (refused) and stops holding.
func (h *holdingSMTP) release() {
	h.hold.Store(false)
	h.freeOnce.Do(func() { close(h.free) })
}

func (h *holdingSMTP) Messages() []smtptest.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]smtptest.Message(nil), h.msgs...)
}

type holdSession struct {
	h   *holdingSMTP
	cur smtptest.Message
}

func (s *holdSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *holdSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, pass string) error {
		if pass != smtptest.Password {
			return errors.New("invalid credentials")
		}
		return nil
	}), nil
}
func (s *holdSession) Mail(from string, _ *smtp.MailOptions) error { s.cur.From = from; return nil }
func (s *holdSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *holdSession) Data(r io.Reader) error {
	if s.h.hold.Load() {
		s.h.once.Do(func() { close(s.h.held) })
		<-s.h.free // the client is killed while it waits for the answer
		return errors.New("held")
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.h.mu.Lock()
	s.h.msgs = append(s.h.msgs, s.cur)
	s.h.mu.Unlock()
	s.cur = smtptest.Message{}
	return nil
}
func (s *holdSession) Reset()        { s.cur = smtptest.Message{} }
func (s *holdSession) Logout() error { return nil }
