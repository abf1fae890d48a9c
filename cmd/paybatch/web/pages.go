package web

import (
	"net/http"
	"strconv"
	"strings"
)

type loginData struct {
	Error string
	Next  string
	Name  string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, _ User) error {
	if u, _, err := s.currentUser(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		_ = u
		return nil
	}
	return s.render(w, r, "login", User{}, "Sign in", loginData{Next: r.URL.Query().Get("next")})
}

// safeNext keeps a post-sign-in redirect inside the app.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ User) error {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		return badInput("the sign-in form could not be read")
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if _, err := s.signIn(r.Context(), w, r, name, r.PostForm.Get("password")); err != nil {
		return err
	}
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
	return nil
}

// logout revokes the session on the server, not only the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, u User) error {
	if _, h, err := s.currentUser(r); err == nil {
		if err := s.store.DeleteSession(r.Context(), h); err != nil {
			return err
		}
		_ = s.store.Audit(r.Context(), AuditEvent{User: u.Name, Action: "signed out", At: s.cfg.Now()})
	}
	s.clearCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

const pageSize = 50

// pager is one page of a list.
type pager struct {
	Page, Pages, Total, From, To int
	Prev, Next                   string // URLs, "" when none
	First                        string // keyset pages: back to the first page
}

func newPager(r *http.Request, param string, total, size int) pager {
	p, _ := strconv.Atoi(r.URL.Query().Get(param))
	pages := (total + size - 1) / size
	if pages == 0 {
		pages = 1
	}
	p = max(1, min(p, pages))
	pg := pager{Page: p, Pages: pages, Total: total, From: (p-1)*size + 1, To: min(p*size, total)}
	if total == 0 {
		pg.From = 0
	}
	link := func(n int) string {
		q := r.URL.Query()
		q.Set(param, strconv.Itoa(n))
		return r.URL.Path + "?" + q.Encode()
	}
	if p > 1 {
		pg.Prev = link(p - 1)
	}
	if p < pages {
		pg.Next = link(p + 1)
	}
	return pg
}

func (p pager) offset(size int) int { return (p.Page - 1) * size }

type batchesData struct {
	Batches []Batch
	States  []State
	Filter  State
	Pager   pager
	Empty   string
	CanUp   bool
}

func (s *Server) batchesPage(w http.ResponseWriter, r *http.Request, u User) error {
	var filter State
	if f := r.URL.Query().Get("state"); f != "" {
		for _, st := range States {
			if string(st) == f {
				filter = st
			}
		}
		if filter == "" {
			return badInput("unknown state %q", f)
		}
	}
	_, total, err := s.store.Batches(r.Context(), filter, 0, 0)
	if err != nil {
		return err
	}
	pg := newPager(r, "page", total, pageSize)
	bs, _, err := s.store.Batches(r.Context(), filter, pg.offset(pageSize), pageSize)
	if err != nil {
		return err
	}
	d := batchesData{Batches: bs, States: States, Filter: filter, Pager: pg, CanUp: allows(u.Role, permUpload)}
	if total == 0 {
		switch {
		case filter != "":
			d.Empty = "No batch is " + filter.Label() + "."
		case d.CanUp:
			d.Empty = "No batches yet. Upload one to start."
		default:
			d.Empty = "No batches yet. An uploader starts one; it will show here."
		}
	}
	return s.render(w, r, "batches", u, "Batches", d)
}
