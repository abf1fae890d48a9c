package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// KDF is the argon2id cost. The default is OWASP's recommended minimum
// (19 MiB, 2 passes, 1 lane): about 30 ms here, memory-hard.
type KDF struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultKDF is the cost new passwords are hashed with.
var DefaultKDF = KDF{Memory: 19 * 1024, Time: 2, Threads: 1}

// MinPasswordLen is the shortest password accepted (NIST SP 800-63B).
const MinPasswordLen = 12

// CheckPassword refuses passwords too short or too long to hash sensibly.
func CheckPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		return badInput("the password must be at least %d characters", MinPasswordLen)
	case len(pw) > 1024:
		return badInput("the password is longer than 1024 bytes")
	}
	return nil
}

// HashPassword hashes pw with argon2id and a random salt, in the PHC string
// format ($argon2id$v=19$m=…,t=…,p=…$salt$hash) so the cost travels with it.
func HashPassword(pw string, k KDF) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(pw), salt, k.Time, k.Memory, k.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, k.Memory, k.Time, k.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// VerifyPassword reports whether pw matches the encoded hash, in constant
// time.
func VerifyPassword(pw, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	var k KDF
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &k.Memory, &k.Time, &k.Threads); err != nil {
		return false
	}
	if k.Memory > 1<<21 || k.Time > 64 || k.Threads == 0 { // refuse a hash that would cost gigabytes
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, k.Time, k.Memory, k.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// sessionCookie is the one cookie the app sets.
const sessionCookie = "paybatch_session"

func newToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, tokenHash(token), nil
}

// tokenHash is what the store keeps: a stolen database holds no usable
// session.
func tokenHash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// throttle slows password guessing: after maxFailures failed sign-ins for
// one user name (ten times that from one client address) within window, further
// attempts are refused until the window has passed. It is in memory: a
// restart forgets it, which only a person with shell access can cause.
type throttle struct {
	mu          sync.Mutex
	maxFailures int // per user name; per address it is ten times that (an office shares one address)
	window      time.Duration
	now         func() time.Time
	failures    map[string][]time.Time
}

func newThrottle(max int, window time.Duration, now func() time.Time) *throttle {
	return &throttle{maxFailures: max, window: window, now: now, failures: map[string][]time.Time{}}
}

func throttleKeys(user, addr string) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return []string{"user:" + strings.ToLower(user), "addr:" + host}
}

// allowed reports whether another attempt may be made now.
func (t *throttle) allowed(user, addr string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := throttleKeys(user, addr)
	return len(t.recent(keys[0])) < t.maxFailures && len(t.recent(keys[1])) < 10*t.maxFailures
}

func (t *throttle) recent(k string) []time.Time {
	cut := t.now().Add(-t.window)
	f := t.failures[k]
	i := 0
	for i < len(f) && f[i].Before(cut) {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(t.failures, k)
	} else {
		t.failures[k] = f
	}
	return f
}

func (t *throttle) failed(user, addr string) { t.failedAt(user, addr, t.now()) }

func (t *throttle) failedAt(user, addr string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range throttleKeys(user, addr) {
		t.failures[k] = append(t.recent(k), at)
	}
}

// failedFrom is the audit detail of a failed sign-in: where it came from,
// which restore reads back.
const failedFrom = "from "

// restore replays the sign-ins of the audit trail (the server's database)
// within the window, so a restart does not forgive a password guesser.
func (t *throttle) restore(events []AuditEvent) {
	cut := t.now().Add(-t.window)
	for _, e := range events {
		if e.At.Before(cut) {
			continue
		}
		switch e.Action {
		case "sign-in failed":
			t.failedAt(e.User, strings.TrimPrefix(e.Detail, failedFrom), e.At)
		case "signed in":
			t.succeeded(e.User)
		}
	}
}

func (t *throttle) succeeded(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failures, "user:"+strings.ToLower(user))
}

// signIn checks a name and password and opens a session.
func (s *Server) signIn(ctx context.Context, w http.ResponseWriter, r *http.Request, name, pw string) (User, error) {
	if !s.throttle.allowed(name, r.RemoteAddr) {
		_ = s.store.Audit(ctx, AuditEvent{User: name, Action: "sign-in refused", Detail: "throttled after repeated failures", At: s.cfg.Now()})
		return User{}, errThrottled
	}
	u, err := s.store.UserByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	hash := u.PasswordHash
	if err != nil {
		hash = s.dummyHash // a wrong name costs the same time as a wrong password
	}
	if !VerifyPassword(pw, hash) || err != nil || u.Disabled {
		s.throttle.failed(name, r.RemoteAddr)
		host, _, herr := net.SplitHostPort(r.RemoteAddr)
		if herr != nil {
			host = r.RemoteAddr
		}
		_ = s.store.Audit(ctx, AuditEvent{User: name, Action: "sign-in failed", Detail: failedFrom + host, At: s.cfg.Now()})
		return User{}, errBadLogin
	}
	s.throttle.succeeded(name)
	token, h, err := newToken()
	if err != nil {
		return User{}, err
	}
	expires := s.cfg.Now().Add(s.cfg.SessionTTL)
	if err := s.store.CreateSession(ctx, h, u.ID, expires); err != nil {
		return User{}, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", Expires: expires, MaxAge: int(s.cfg.SessionTTL.Seconds()),
		HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
	_ = s.store.Audit(ctx, AuditEvent{User: u.Name, Action: "signed in", At: s.cfg.Now()})
	return u, nil
}

func (s *Server) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.Secure, SameSite: http.SameSiteLaxMode})
}

// currentUser is the signed-in user of r, or ErrNotFound.
func (s *Server) currentUser(r *http.Request) (User, string, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return User{}, "", ErrNotFound
	}
	h := tokenHash(c.Value)
	u, err := s.store.Session(r.Context(), h, s.cfg.Now())
	return u, h, err
}
