package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
)

// Dashboard is the web dashboard of one or more queues: server-rendered
// pages, a JSON API, live updates over server-sent events, and, when
// Config.Actions is on, the actions an operator takes on dead letters, jobs
// and the queue-wide pause. Every route needs authentication. It reads the
// queues through their dq.Inspector (and the schedule through a
// dqx.CronInspector) only. It is an http.Handler serving every route under
// Config.Prefix; Mount adds it to a go-zero rest.Server in one call.
type Dashboard struct {
	c        Config
	queues   []*dq.Inspector
	cron     *dqx.CronInspector
	auth     *authenticator
	authFn   func(r *http.Request) (string, bool)
	format   func(queue string, body []byte) string
	insecure bool

	mux    *http.ServeMux
	routes []route

	// heartbeat is the SSE comment interval (a field so tests can shorten
	// it).
	heartbeat time.Duration

	samples *sampler
	hub     *hub
	// maxStreams bounds the event streams open at once (a field so tests
	// can lower it).
	maxStreams int

	closeOnce sync.Once
	closed    chan struct{}
}

// Option configures a Dashboard.
type Option func(*Dashboard)

// WithAuth authenticates requests with fn, typically from the mounting
// service's own session cookie: fn returns the user's name and true for a
// request it accepts (a name that is empty or blank accepts nothing). A
// request fn refuses may still pass basic auth with the Config's accounts. (go-zero's JWT middleware reads only the
// Authorization header, which page loads and EventSource cannot send.)
func WithAuth(fn func(r *http.Request) (user string, ok bool)) Option {
	return func(d *Dashboard) { d.authFn = fn }
}

// WithBodyFormatter renders job bodies with fn (e.g. decoding a protobuf,
// or masking personal data) on the job page and in /api/jobs; its result
// is escaped like any other text. Without it a body is shown as text when
// it is printable UTF-8, else as its size and the hex of its first 256
// bytes. The raw body is never sent, so what fn leaves out stays out.
// Config.HideBodies wins over it. A body is shown where the Inspector
// reads one (dq.JobInfo.Body: from a copy of the job still on a node).
func WithBodyFormatter(fn func(queue string, body []byte) string) Option {
	return func(d *Dashboard) { d.format = fn }
}

// WithCron adds the cron page, from ci.
func WithCron(ci *dqx.CronInspector) Option {
	return func(d *Dashboard) { d.cron = ci }
}

// WithQueue adds another queue: every page gets a queue selector (the q
// parameter, a queue's name as Inspector.Queue says it).
func WithQueue(in *dq.Inspector) Option {
	return func(d *Dashboard) {
		if in != nil {
			d.queues = append(d.queues, in)
		}
	}
}

// WithInsecure lets New build a Dashboard with no authentication: every
// request addressed to a loopback host (its Host localhost or a loopback
// address) is served as user "anonymous", any other is refused with 403,
// so that a page of another site reaching 127.0.0.1 by DNS rebinding gets
// nothing. Only for a dashboard reachable from this host alone (zerodq
// serve on a loopback address).
func WithInsecure() Option {
	return func(d *Dashboard) { d.insecure = true }
}

// New returns a Dashboard of in's queue (and those of WithQueue). It
// refuses a Config with no authentication unless WithInsecure is given. It
// contacts no server; the live-update poller starts with the first
// subscriber. Close stops it; the inspectors stay open (their owner closes
// them).
func New(c Config, in *dq.Inspector, opts ...Option) (*Dashboard, error) {
	if in == nil {
		return nil, fmt.Errorf("%w: no Inspector", ErrBadConfig)
	}
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	users, err := c.accounts()
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		c:          c,
		queues:     []*dq.Inspector{in},
		heartbeat:  15 * time.Second,
		maxStreams: defaultMaxStreams,
		samples:    newSampler(),
		closed:     make(chan struct{}),
	}
	for _, o := range opts {
		o(d)
	}
	if d.format == nil {
		d.format = textBody
	}
	if len(users) > 0 {
		d.auth = newAuthenticator(users)
	}
	if d.auth == nil && d.authFn == nil && !d.insecure {
		return nil, ErrNoAuth
	}
	d.hub = newHub(d)
	d.routes = d.routeTable()
	d.mux = http.NewServeMux()
	for _, rt := range d.routes {
		for _, p := range rt.patterns(c.Prefix) {
			d.mux.Handle(p, d.wrap(rt))
		}
	}
	return d, nil
}

// MustNew is New that logs the error and exits on failure.
func MustNew(c Config, in *dq.Inspector, opts ...Option) *Dashboard {
	d, err := New(c, in, opts...)
	must(err)
	return d
}

// Prefix is the path the dashboard is served under ("" at the root).
func (d *Dashboard) Prefix() string { return d.c.Prefix }

// ServeHTTP serves the dashboard's routes under Config.Prefix; any other
// path is 404.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mux.ServeHTTP(w, r)
}

// defaultMaxStreams bounds a Dashboard's open event streams: operators'
// browser tabs, not an audience.
const defaultMaxStreams = 100

// ErrClosed is answered by a closed Dashboard's live updates.
var ErrClosed = errors.New("admin: dashboard closed")

// Close stops the live-update poller and ends every open event stream. It
// is idempotent; the Dashboard answers its other routes after it.
func (d *Dashboard) Close() error {
	d.closeOnce.Do(func() {
		close(d.closed)
		d.hub.stop()
	})
	return nil
}

// route kinds: what a route answers and which rules apply.
type routeKind int

const (
	kindPage   routeKind = iota // html
	kindAPI                     // json, GET
	kindEvents                  // text/event-stream
	kindAction                  // POST, changes the queue
	kindStatic                  // an embedded asset
)

// route is one of the dashboard's routes.
type route struct {
	method string
	path   string // under the prefix, go-zero style (":id")
	kind   routeKind
	h      func(w http.ResponseWriter, r *http.Request, rq *request)
}

// patterns are the ServeMux patterns of the route under prefix.
func (rt route) patterns(prefix string) []string {
	if rt.path == "/" {
		ps := []string{rt.method + " " + prefix + "/{$}"}
		if prefix != "" {
			ps = append(ps, rt.method+" "+prefix)
		}
		return ps
	}
	var segs []string
	for _, s := range strings.Split(rt.path, "/") {
		if strings.HasPrefix(s, ":") {
			s = "{" + s[1:] + "}"
		}
		segs = append(segs, s)
	}
	return []string{rt.method + " " + prefix + strings.Join(segs, "/")}
}

// request is what a handler knows of its request beyond it.
type request struct {
	user  string
	queue *dq.Inspector
}

func (d *Dashboard) routeTable() []route {
	return []route{
		{http.MethodGet, "/", kindPage, d.pageOverview},
		{http.MethodGet, "/nodes", kindPage, d.pageNodes},
		{http.MethodGet, "/lateness", kindPage, d.pageLateness},
		{http.MethodGet, "/jobs", kindPage, d.pageJobs},
		{http.MethodGet, "/dead", kindPage, d.pageDead},
		{http.MethodGet, "/cron", kindPage, d.pageCron},
		{http.MethodGet, "/consumers", kindPage, d.pageConsumers},
		{http.MethodGet, "/static/app.js", kindStatic, serveStatic("app.js", "text/javascript; charset=utf-8")},
		{http.MethodGet, "/static/app.css", kindStatic, serveStatic("app.css", "text/css; charset=utf-8")},
		{http.MethodGet, "/api/overview", kindAPI, d.apiOverview},
		{http.MethodGet, "/api/nodes", kindAPI, d.apiNodes},
		{http.MethodGet, "/api/jobs", kindAPI, d.apiJobs},
		{http.MethodGet, "/api/dead", kindAPI, d.apiDead},
		{http.MethodGet, "/api/dead/count", kindAPI, d.apiDeadCount},
		{http.MethodGet, "/api/cron", kindAPI, d.apiCron},
		{http.MethodGet, "/api/consumers", kindAPI, d.apiConsumers},
		{http.MethodGet, "/api/ops/:id", kindAPI, d.apiOp},
		{http.MethodGet, "/api/events", kindEvents, d.apiEvents},
		{http.MethodPost, "/api/jobs/:id/revoke", kindAction, d.actRevoke},
		{http.MethodPost, "/api/dead/retry", kindAction, d.actDeadRetry},
		{http.MethodPost, "/api/dead/delete", kindAction, d.actDeadDelete},
		{http.MethodPost, "/api/pause", kindAction, d.actPause},
		{http.MethodPost, "/api/resume", kindAction, d.actResume},
	}
}

// csp lets the pages load their own script, stylesheet and SVG only.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// wrap applies the rules every route follows: security headers,
// authentication, the queue parameter, and for actions the read-only switch
// and the same-origin check, in that order.
func (d *Dashboard) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if rt.kind != kindStatic {
			h.Set("Cache-Control", "no-store")
		}
		user, ok := d.user(r)
		if !ok && d.insecure && !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "refused: a dashboard without authentication answers only "+
				"requests to a loopback host (localhost, 127.0.0.1, ::1)")
			return
		}
		if !ok {
			d.refuseAuth(w)
			return
		}
		if rt.kind == kindAction {
			if !d.c.Actions {
				writeError(w, http.StatusForbidden, "actions are off: this dashboard is read-only (Config.Actions)")
				return
			}
			if !sameOrigin(r) {
				writeError(w, http.StatusForbidden, "refused: not from this dashboard's origin")
				return
			}
		}
		in, ok := d.queue(r.URL.Query().Get("q"))
		if !ok {
			writeError(w, http.StatusNotFound, "no such queue")
			return
		}
		if rt.kind != kindEvents {
			ctx, cancel := context.WithTimeout(r.Context(), d.c.Timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		rt.h(w, r, &request{user: user, queue: in})
	})
}

// queue finds the Inspector named q ("" is the first).
func (d *Dashboard) queue(q string) (*dq.Inspector, bool) {
	if q == "" {
		return d.queues[0], true
	}
	for _, in := range d.queues {
		if in.Queue() == q {
			return in, true
		}
	}
	return nil, false
}
