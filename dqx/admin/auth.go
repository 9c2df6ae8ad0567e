package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// authenticator checks a request's basic-auth credentials against bcrypt
// hashes. bcrypt costs tens of milliseconds per check by design, and a
// page with its live updates and actions makes many requests, so a
// successful check is remembered for a minute under a digest of the
// credentials (never the password itself).
type authenticator struct {
	users []account
	// dummy is compared when the user is unknown, so that an unknown user
	// costs as much as a wrong password.
	dummy []byte

	mu   sync.Mutex
	good map[[32]byte]goodEntry

	// compare is bcrypt's comparison (a field so tests can watch it);
	// waiting counts the checks waiting for their turn.
	compare func(hash, pass []byte) error
	waiting atomic.Int64
	// slots bounds the comparisons running at once: a flood of wrong
	// passwords, which no cache answers, waits for them rather than
	// taking every core of the service the dashboard is mounted in.
	slots chan struct{}
}

type account struct {
	name string
	hash []byte
}

type goodEntry struct {
	user    string
	expires time.Time
}

const (
	authCacheTTL  = time.Minute
	authCacheSize = 256
)

// checkAccount refuses an empty user name or a hash bcrypt cannot read.
func checkAccount(user, hash string) error {
	if user == "" || strings.ContainsAny(user, ":,") {
		return fmt.Errorf("user %q: a name without ':' or ','", user)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("user %q: not a bcrypt hash: %v", user, err)
	}
	return nil
}

func newAuthenticator(users map[string]string) *authenticator {
	a := &authenticator{
		good:    map[[32]byte]goodEntry{},
		compare: bcrypt.CompareHashAndPassword,
		slots:   make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
	}
	cost := bcrypt.MinCost
	for u, h := range users {
		a.users = append(a.users, account{name: u, hash: []byte(h)})
		if c, err := bcrypt.Cost([]byte(h)); err == nil && c > cost {
			cost = c
		}
	}
	// As costly as the dearest account, so that no name answers faster.
	a.dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user"), cost)
	return a
}

// check returns the user the credentials authenticate, or false (also when
// ctx ends while it waits for its turn to compare).
func (a *authenticator) check(ctx context.Context, user, pass string) (string, bool) {
	if a == nil || len(a.users) == 0 {
		return "", false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	now := time.Now()
	a.mu.Lock()
	if e, ok := a.good[key]; ok && now.Before(e.expires) {
		a.mu.Unlock()
		return e.user, true
	}
	a.mu.Unlock()

	a.waiting.Add(1)
	select {
	case a.slots <- struct{}{}:
		a.waiting.Add(-1)
		defer func() { <-a.slots }()
	case <-ctx.Done():
		a.waiting.Add(-1)
		return "", false
	}
	// Compare the name with every account in constant time, so that the
	// time taken tells nothing of which names exist.
	hash := a.dummy
	found := false
	for _, acc := range a.users {
		if subtle.ConstantTimeCompare([]byte(user), []byte(acc.name)) == 1 {
			hash, found = acc.hash, true
		}
	}
	if a.compare(hash, []byte(pass)) != nil || !found {
		return "", false
	}
	a.mu.Lock()
	if len(a.good) >= authCacheSize {
		clear(a.good)
	}
	a.good[key] = goodEntry{user: user, expires: now.Add(authCacheTTL)}
	a.mu.Unlock()
	return user, true
}

// user authenticates r: the WithAuth hook first, then basic auth. It
// returns "" and false when neither accepts the request. A hook answering
// ok with no user name (a session with no one in it) accepts nothing:
// every action is audited under the name, and no one is no actor.
func (d *Dashboard) user(r *http.Request) (string, bool) {
	if d.authFn != nil {
		if u, ok := d.authFn(r); ok && strings.TrimSpace(u) != "" {
			return u, true
		}
	}
	if u, p, ok := r.BasicAuth(); ok {
		if name, ok := d.auth.check(r.Context(), u, p); ok {
			return name, true
		}
	}
	if d.insecure && loopbackHost(r.Host) {
		return "anonymous", true
	}
	return "", false
}

// loopbackHost tells whether a request's Host names this machine's
// loopback interface: localhost, or a loopback address. A dashboard
// without authentication answers no other, since a page of another site
// reaches 127.0.0.1 under its own name by DNS rebinding, and then its
// Origin and Host agree.
func loopbackHost(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// refuseAuth answers 401, asking for basic auth when accounts exist.
func (d *Dashboard) refuseAuth(w http.ResponseWriter) {
	if d.auth != nil && len(d.auth.users) > 0 {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+strings.ReplaceAll(d.c.Title, `"`, "")+`", charset="UTF-8"`)
	}
	http.Error(w, "authentication required", http.StatusUnauthorized)
}

// sameOrigin tells whether a state-changing request comes from the
// dashboard's own pages (or from no browser at all): a browser says where a
// request comes from in Sec-Fetch-Site, and in Origin on every POST; a tool
// such as curl sends neither.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host) || strings.EqualFold(hostOnly(u.Host, u.Scheme), hostOnly(r.Host, u.Scheme))
}

// hostOnly drops a port that is the scheme's default, so that
// "example.com:443" and "example.com" are the same host for https.
func hostOnly(hostport, scheme string) string {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		return h
	}
	return hostport
}
