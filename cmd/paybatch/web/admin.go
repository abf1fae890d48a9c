package web

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/paybatch/paybatch"
	"github.com/paybatch/paybatch/cmd/paybatch/job"
)

type limitView struct {
	Provider paybatch.Provider
	Submit   string
	Status   string
	Overall  string
}

type credentialView struct {
	Name string
	Set  bool
}

type adminData struct {
	Users       []User
	Roles       []Role
	Credentials []credentialView
	Limits      []limitView
	Thresholds  []string
	Schedule    []string
	MinPassword int
}

func (s *Server) adminPage(w http.ResponseWriter, r *http.Request, u User) error {
	users, err := s.store.Users(r.Context())
	if err != nil {
		return err
	}
	d := adminData{Users: users, Roles: Roles, MinPassword: MinPasswordLen, Schedule: s.cfg.Schedule}
	for _, p := range []paybatch.Provider{paybatch.SmartRetry, paybatch.SmarterPay} {
		c := s.cfg.Credentials(p)
		sv, uv := job.Standard(p)
		d.Credentials = append(d.Credentials, credentialView{sv, c.Secret != ""}, credentialView{uv, c.BaseURL != ""})
		l := s.limits(p)
		d.Limits = append(d.Limits, limitView{Provider: p, Submit: limitText(l.Submit), Status: limitText(l.Status), Overall: limitText(l.Overall)})
	}
	for _, c := range slices.Sorted(maps.Keys(s.cfg.Thresholds)) {
		d.Thresholds = append(d.Thresholds, c+" "+formatMinor(c, s.cfg.Thresholds[c]))
	}
	return s.render(w, r, "admin", u, "Admin", d)
}

func limitText(l paybatch.Limit) string {
	if l.IsZero() {
		return "—"
	}
	return l.String()
}

// ValidUserName refuses names that would be confusing in an audit trail.
func ValidUserName(name string) error {
	if name == "" || len(name) > 64 {
		return badInput("a user name is 1 to 64 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return badInput("user name %q: use letters, digits and . _ - @ only", name)
		}
	}
	return nil
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request, u User) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return badInput("the form could not be read")
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	role, err := ParseRole(r.PostForm.Get("role"))
	if err != nil {
		return err
	}
	if err := ValidUserName(name); err != nil {
		return err
	}
	pw := r.PostForm.Get("password")
	if err := CheckPassword(pw); err != nil {
		return err
	}
	hash, err := HashPassword(pw, s.cfg.KDF)
	if err != nil {
		return err
	}
	if _, err := s.store.CreateUser(r.Context(), User{Name: name, Role: role, PasswordHash: hash, CreatedAt: s.cfg.Now()}); err != nil {
		return err
	}
	_ = s.store.Audit(r.Context(), AuditEvent{User: u.Name, Action: "user added", Detail: fmt.Sprintf("%s as %s", name, role), At: s.cfg.Now()})
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
	return nil
}

// updateUser changes a role, disables/enables or resets a password; every
// change revokes the user's sessions (the store does it in the same
// transaction), so a demoted user's open pages lose their rights at once.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, u User) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return badInput("the form could not be read")
	}
	target, err := s.store.UserByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	var detail string
	switch action := r.PostForm.Get("action"); action {
	case "role":
		role, err := ParseRole(r.PostForm.Get("role"))
		if err != nil {
			return err
		}
		if target.ID == u.ID && role != RoleAdmin {
			return badInput("you cannot remove your own admin role; ask another admin")
		}
		detail = fmt.Sprintf("%s: role %s → %s", target.Name, target.Role, role)
		target.Role = role
	case "disable", "enable":
		if target.ID == u.ID {
			return badInput("you cannot disable yourself")
		}
		target.Disabled = action == "disable"
		detail = fmt.Sprintf("%s: %sd", target.Name, action)
	case "password":
		pw := r.PostForm.Get("password")
		if err := CheckPassword(pw); err != nil {
			return err
		}
		if target.PasswordHash, err = HashPassword(pw, s.cfg.KDF); err != nil {
			return err
		}
		detail = target.Name + ": password reset"
	default:
		return badInput("unknown action %q", action)
	}
	if err := s.store.UpdateUser(r.Context(), target); err != nil {
		return err
	}
	_ = s.store.Audit(r.Context(), AuditEvent{User: u.Name, Action: "user changed", Detail: detail + " (sessions revoked)", At: s.cfg.Now()})
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
	return nil
}
