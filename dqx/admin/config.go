package admin

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config configures a Dashboard. It is meant to be loaded with go-zero's conf
// package as a named field of the service config (`Dashboard admin.Config`),
// beside the `Dq dq.DqConf` it looks into. A Config built in Go may leave
// tuning fields zero: zero means the default given on each field.
type Config struct {
	// Prefix is the path the dashboard is served under. If empty, default
	// /zerodq; "/" serves it at the root.
	Prefix string `json:",default=/zerodq"`
	// Title names the dashboard in every page's title and header. If empty,
	// default zerodq.
	Title string `json:",optional"`
	// Actions turns on the routes that change the queue (revoke, retry and
	// delete dead letters, pause and resume). Off, every one of them answers
	// 403 whoever asks: the dashboard is read-only.
	Actions bool `json:",default=false"`
	// Users are the basic-auth accounts: user name to bcrypt hash (as
	// `htpasswd -nbB user password` prints after the colon).
	Users map[string]string `json:",optional"`
	// UsersEnv names an environment variable holding more accounts, as
	// "user:bcrypthash[,user:bcrypthash]", so that hashes stay out of the
	// config file.
	UsersEnv string `json:",optional"`
	// HideBodies leaves job bodies off every page and API answer, in any
	// form (see WithBodyFormatter for where a body would show).
	HideBodies bool `json:",optional"`
	// Alerts are the thresholds of the overview's banner.
	Alerts AlertConf `json:",optional"`
	// Poll is how often the live updates (SSE) read the queue: one reader
	// per Dashboard however many browsers watch. If zero, default 2s.
	Poll time.Duration `json:",default=2s"`
	// Timeout bounds a page or API request, Mount's route timeout. Bulk
	// actions run in the background and are not bound by it. If zero,
	// default 30s.
	Timeout time.Duration `json:",default=30s"`
}

// AlertConf holds the thresholds of the overview's alert banner, which
// evaluates the README's "worth an alert" list. Rates are per second over
// the latest interval the consumers reported (two registry entries apart);
// counts are rises over that interval. A zero field takes its default; a
// negative one turns its alert off.
type AlertConf struct {
	// RetryRate is the retries per second, over all consumers, above which
	// "retry-rate" fires. If zero, default 1.
	RetryRate float64 `json:",default=1"`
	// DeadRate is the jobs dying per second above which "dead-rate" fires.
	// If zero, default 0.1.
	DeadRate float64 `json:",default=0.1"`
	// Malformed is the malformed bodies, counted by the live consumers since
	// they started, at or above which "malformed" fires. If zero, default 1:
	// any.
	Malformed int64 `json:",default=1"`
	// ReserveErrors is the rise of failed reserves (any node, any consumer)
	// over the interval at or above which "reserve-errors" fires. If zero,
	// default 1.
	ReserveErrors int64 `json:",default=1"`
	// LatenessP99 is the p99 lateness of the latest interval above which
	// "lateness" fires. If zero, default 5s.
	LatenessP99 time.Duration `json:",default=5s"`
	// CopiesFailed is the failed or uncertain puts on one node, counted by
	// the live producers since they started, at or above which
	// "copies-failed" fires: that node's jobs have fewer copies than
	// Replicas. If zero, default 1.
	CopiesFailed int64 `json:",default=1"`
}

// The defaults of Config and AlertConf, in one place.
const (
	defaultPrefix        = "/zerodq"
	defaultTitle         = "zerodq"
	defaultPoll          = 2 * time.Second
	defaultTimeout       = 30 * time.Second
	defaultRetryRate     = 1
	defaultDeadRate      = 0.1
	defaultMalformed     = 1
	defaultReserveErrors = 1
	defaultLatenessP99   = 5 * time.Second
	defaultCopiesFailed  = 1
)

// ErrNoAuth is returned by New for a Config with no way to authenticate
// (no Users, no UsersEnv accounts, no WithAuth) and no WithInsecure.
var ErrNoAuth = errors.New("admin: no authentication configured (Users, UsersEnv or WithAuth)")

// ErrBadConfig is matched (errors.Is) by every Config error New returns.
var ErrBadConfig = errors.New("admin: bad config")

// withDefaults returns a copy of c with its zero fields set to their
// defaults and the prefix in canonical form ("" for the root, else with a
// leading slash and no trailing one).
func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.Prefix == "/" {
		c.Prefix = ""
	}
	if c.Title == "" {
		c.Title = defaultTitle
	}
	if c.Poll == 0 {
		c.Poll = defaultPoll
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	a := &c.Alerts
	if a.RetryRate == 0 {
		a.RetryRate = defaultRetryRate
	}
	if a.DeadRate == 0 {
		a.DeadRate = defaultDeadRate
	}
	if a.Malformed == 0 {
		a.Malformed = defaultMalformed
	}
	if a.ReserveErrors == 0 {
		a.ReserveErrors = defaultReserveErrors
	}
	if a.LatenessP99 == 0 {
		a.LatenessP99 = defaultLatenessP99
	}
	if a.CopiesFailed == 0 {
		a.CopiesFailed = defaultCopiesFailed
	}
	return c
}

// validate checks a Config with its defaults and returns the first problem,
// naming the field.
func (c Config) validate() error {
	switch {
	case strings.ContainsAny(c.Prefix, "?#{}: \t"):
		return fmt.Errorf("%w: Prefix %q: a plain path", ErrBadConfig, c.Prefix)
	case c.Poll < 0:
		return fmt.Errorf("%w: Poll %v: not negative", ErrBadConfig, c.Poll)
	case c.Timeout < 0:
		return fmt.Errorf("%w: Timeout %v: not negative", ErrBadConfig, c.Timeout)
	}
	for u, h := range c.Users {
		if err := checkAccount(u, h); err != nil {
			return fmt.Errorf("%w: Users: %v", ErrBadConfig, err)
		}
	}
	return nil
}

// accounts merges Users with the accounts of UsersEnv.
func (c Config) accounts() (map[string]string, error) {
	out := make(map[string]string, len(c.Users))
	for u, h := range c.Users {
		out[u] = h
	}
	if c.UsersEnv == "" {
		return out, nil
	}
	v := os.Getenv(c.UsersEnv)
	for _, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		u, h, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("%w: UsersEnv %s: %q is not user:bcrypthash", ErrBadConfig, c.UsersEnv, cutSecret(pair))
		}
		if err := checkAccount(u, h); err != nil {
			return nil, fmt.Errorf("%w: UsersEnv %s: %v", ErrBadConfig, c.UsersEnv, err)
		}
		out[u] = h
	}
	return out, nil
}

// cutSecret keeps a bad entry's first bytes for the error, never a whole
// hash.
func cutSecret(s string) string {
	if len(s) > 8 {
		return s[:8] + "..."
	}
	return s
}
