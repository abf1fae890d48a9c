package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
	"github.com/paybatch/paybatch/pipeline"
	"github.com/paybatch/paybatch/pipeline/journal"
	"github.com/paybatch/paybatch/pipeline/smarterpay"
	"github.com/paybatch/paybatch/writers"
)

// limits are the rate limits a send to provider p runs under: the
// documented ones, lowered by the engine settings.
func (s *Server) limits(p paybatch.Provider) paybatch.Limits {
	return pipeline.Config{Provider: p, SubmitRate: s.cfg.Engine.SubmitRate, StatusRate: s.cfg.Engine.StatusRate}.Limits()
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Journal is what the server needs of the journal it sends through: the
// journal API both backends implement (journal.DuckDB, postgres.Journal;
// with IDsFromOtherFiles for the upload page's "already sent" warning and
// PageBounds for the outcome pages), and the copy of one batch's rows that
// reconcile reads.
type Journal interface {
	journal.Journal
	// Snapshot writes a new DuckDB journal file at path holding the rows
	// (latest states) and rejects of sourceFiles.
	Snapshot(ctx context.Context, path string, sourceFiles ...string) error
}

// Config is everything the server is given; nothing is read from the
// environment or from package state.
type Config struct {
	Store   Store
	Journal Journal // the one journal every batch is sent through (held for the server's life)
	// JournalTurn, when set, is held around each batch's send: jobs the
	// server runs on a schedule on the same DuckDB journal (job.RunOn)
	// take it too, so that one run set at a time works the journal.
	JournalTurn sync.Locker
	DataDir     string // uploads are kept in DataDir/uploads/<batch id>/
	// Credentials gives a provider's credential and endpoint (the CLI reads
	// them from the environment); Engine tunes the engine for every send.
	Credentials func(p paybatch.Provider) job.Credentials
	Engine      job.Engine
	// Thresholds: currency code → total in minor units above which a batch
	// needs two approvers.
	Thresholds map[string]int64
	Ledger     string // ledger file reconciled against after sending ("" → no report.xlsx until one is uploaded)
	// EmailTo are the recipients of the batch report's e-mail; Mail gives
	// the SMTP settings for them (job.Deps.Mail, as `run` has it).
	EmailTo []string
	Mail    func(to []string) (writers.MailConfig, error)
	// Schedule describes the job files the server runs on a schedule
	// ("CRON → JOBFILE"), for the admin page.
	Schedule   []string
	MaxUpload  int64 // bytes (default 100 MiB)
	SessionTTL time.Duration
	Secure     bool // served over TLS: cookies are Secure
	KDF        KDF
	Now        func() time.Time
	Logger     *slog.Logger
}

// Server is the finance web app.
type Server struct {
	cfg       Config
	store     Store
	pages     map[string]*template.Template
	throttle  *throttle
	dummyHash string
	log       *slog.Logger
	send      *sender
	handler   http.Handler
	bacs      *smarterpay.Calendar // the dates SmarterPay will use
	// previewFile: a CSV's preview is also written to a page file (tests
	// compare its pages with the pages read from the upload; preview.go).
	previewFile bool
	previewSpan int64 // tests: maxPreviewSpan when 0

	reconMu sync.Mutex // one reconciliation at a time

	// The outcome indexes of finished batches (outcomeindex.go), kept while
	// journalVersion, counted up by each turn on the journal, is theirs.
	turn           journalTurn
	journalVersion atomic.Int64
	idxMu          sync.Mutex
	indexes        map[int64]indexEntry
	bgCtx          context.Context // background counting; Close cancels it and waits
	stopBG         context.CancelFunc
	bg             sync.WaitGroup

	closeOnce sync.Once
}

// New builds the server. Start begins sending; Close stops it.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("web: no store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 100 << 20
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.KDF == (KDF{}) {
		cfg.KDF = DefaultKDF
	}
	if cfg.Credentials == nil {
		cfg.Credentials = func(paybatch.Provider) job.Credentials { return job.Credentials{} }
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger,
		throttle: newThrottle(5, 15*time.Minute, cfg.Now), bacs: smarterpay.NewCalendar(), indexes: map[int64]indexEntry{}}
	if cfg.JournalTurn == nil {
		cfg.JournalTurn = &sync.Mutex{}
	}
	s.turn = journalTurn{Locker: cfg.JournalTurn, s: s}
	s.cfg.JournalTurn = s.turn
	s.bgCtx, s.stopBG = context.WithCancel(context.Background())
	// Throttling survives a restart: failed sign-ins are in the audit trail.
	signIns, err := cfg.Store.AuditTrail(context.Background(), 0)
	if err != nil {
		return nil, fmt.Errorf("web: reading the sign-ins of the audit trail: %w", err)
	}
	s.throttle.restore(signIns)
	if s.dummyHash, err = HashPassword("no such user", cfg.KDF); err != nil {
		return nil, err
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.send = newSender(s)
	s.handler = s.buildHandler()
	return s, nil
}

// Handler serves the app: security headers, then cross-origin protection
// for every state change, then the routes, each behind its permission.
func (s *Server) Handler() http.Handler { return s.handler }

// Start resumes batches that were being sent when the server stopped and
// begins taking new ones. It returns at once; Close stops the work.
func (s *Server) Start(ctx context.Context) error { return s.send.start(ctx) }

// Close stops sending (the journal stays consistent: a stopped batch
// resumes at the next Start) and waits for the sender to finish.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.send.stop()
		s.stopBG()
		s.bg.Wait()
	})
}

// perm is what a route needs.
type perm int

const (
	permPublic    perm = iota // sign-in page, assets
	permView                  // any signed-in user
	permUpload                // uploaders
	permApprove               // approvers
	permAdmin                 // admins
	permReconcile             // uploaders and approvers: reconcile a sent batch, e-mail its report
)

func (p perm) String() string {
	return [...]string{"public", "view", "upload", "approve", "admin", "reconcile"}[p]
}

// allows is the one place roles meet permissions.
func allows(r Role, p perm) bool {
	switch p {
	case permPublic:
		return true
	case permView:
		return r != ""
	case permUpload:
		return r == RoleUploader
	case permApprove:
		return r == RoleApprover
	case permAdmin:
		return r == RoleAdmin
	case permReconcile:
		return r == RoleUploader || r == RoleApprover
	}
	return false
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, u User) error

type route struct {
	pattern string
	perm    perm
	h       handlerFunc
}

// routes is every URL the app answers, with the permission it needs.
// The routes×roles test walks this table.
func (s *Server) routes() []route {
	return []route{
		{"GET /login", permPublic, s.loginPage},
		{"POST /login", permPublic, s.login},
		{"POST /logout", permView, s.logout},
		{"GET /static/", permPublic, s.static},

		{"GET /{$}", permView, s.batchesPage},
		{"GET /upload", permUpload, s.uploadPage},
		{"POST /upload", permUpload, s.upload},
		{"GET /batches/{id}", permView, s.batchPage},
		{"GET /batches/{id}/events", permView, s.events},
		{"GET /batches/{id}/rejects.csv", permView, s.rejectsCSV},
		{"GET /batches/{id}/outcomes.csv", permView, s.outcomesCSV},
		{"GET /batches/{id}/report.xlsx", permView, s.reportXLSX},
		{"GET /batches/{id}/original", permView, s.original},
		{"GET /batches/{id}/exports/{name}", permView, s.export},
		{"POST /batches/{id}/reconcile", permReconcile, s.reconcile},
		{"POST /batches/{id}/email", permReconcile, s.email},
		{"POST /batches/{id}/sheet", permUpload, s.chooseSheet},
		{"POST /batches/{id}/submit", permUpload, s.submit},
		{"POST /batches/{id}/discard", permUpload, s.discard},
		{"POST /batches/{id}/approve", permApprove, s.approve},
		{"POST /batches/{id}/reject", permApprove, s.reject},
		{"POST /batches/{id}/resume", permApprove, s.resume},

		{"GET /admin", permAdmin, s.adminPage},
		{"POST /admin/users", permAdmin, s.addUser},
		{"POST /admin/users/{name}", permAdmin, s.updateUser},
	}
}

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.guard(rt))
	}
	mux.Handle("/", s.guard(route{"", permPublic, func(http.ResponseWriter, *http.Request, User) error {
		return fmt.Errorf("no such page: %w", ErrNotFound)
	}}))
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, User{}, fmt.Errorf("%w: this form was sent from another site (cross-origin request refused); nothing was changed", ErrForbidden))
	}))
	return securityHeaders(s.recoverer(cop.Handler(mux)))
}

// securityHeaders: no inline script, no framing, no sniffing, no referrer
// leaving the app, and no caching of pages that show money.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a 500 page; the server stays up.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.fail(w, r, User{}, fmt.Errorf("panic: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// guard checks the session and the route's permission before its handler
// runs, and sends any error the handler returns to fail.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u User
		if rt.perm != permPublic {
			var err error
			u, _, err = s.currentUser(r)
			if errors.Is(err, ErrNotFound) {
				if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/events") {
					http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
				s.fail(w, r, u, errSignIn)
				return
			}
			if err != nil {
				s.fail(w, r, u, err)
				return
			}
			if !allows(u.Role, rt.perm) {
				s.fail(w, r, u, fmt.Errorf("%w (%s needs the %s permission; you are %s)", ErrForbidden, r.URL.Path, rt.perm, u.Role))
				return
			}
		}
		if err := rt.h(w, r, u); err != nil {
			s.fail(w, r, u, err)
		}
	})
}

// fail writes the error page for err with the status statusOf gives.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, u User, err error) {
	status := statusOf(err)
	if status >= 500 || status == 499 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "user", u.Name, "err", paybatch.MaskCardNumbers(err.Error()))
	} else {
		s.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "user", u.Name, "status", status, "err", paybatch.MaskCardNumbers(err.Error()))
	}
	if status == 499 {
		return
	}
	if status == http.StatusUnauthorized && errors.Is(err, errSignIn) {
		s.clearCookie(w)
	}
	data := errorPage{Status: status, StatusText: http.StatusText(status), Message: publicMessage(err, status)}
	if errors.Is(err, errBadLogin) || errors.Is(err, errThrottled) {
		w.WriteHeader(status)
		_ = s.renderTo(w, r, "login", u, "Sign in", loginData{Error: data.Message, Next: r.FormValue("next")})
		return
	}
	data.Back = r.Referer()
	w.WriteHeader(status)
	_ = s.renderTo(w, r, "error", u, data.StatusText, data)
}

type errorPage struct {
	Status     int
	StatusText string
	Message    string
	Back       string
}

// page is what every template gets.
type page struct {
	Title   string
	User    User
	Data    any
	Refresh bool // a <noscript> refresh while a batch is sending
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page with status 200.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, u User, title string, data any) error {
	return s.renderTo(w, r, name, u, title, data)
}

func (s *Server) renderTo(w http.ResponseWriter, r *http.Request, name string, u User, title string, data any) error {
	t, ok := s.pages[name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	p := page{Title: title, User: u, Data: data}
	if rp, ok := data.(interface{ refresh() bool }); ok {
		p.Refresh = rp.refresh()
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := buf.WriteTo(w)
	return err
}

func (s *Server) static(w http.ResponseWriter, r *http.Request, _ User) error {
	sub, _ := fs.Sub(staticFS, "static")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.StripPrefix("/static/", http.FileServerFS(sub)).ServeHTTP(w, r)
	return nil
}
