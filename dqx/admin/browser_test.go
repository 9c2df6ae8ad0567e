package admin_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/stores/redis"
	"golang.org/x/crypto/bcrypt"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/admin"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestDashboardInABrowser drives the dashboard in headless Chromium (see
// scripts/install-browser.sh), on real servers, one browser shared by the
// subtests. The read-only subtests share one seeded queue: dead letters, a
// job that ran, and copies ready, delayed and reserved on every node.
func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	b := startBrowser(t)
	q := seedQueue(t)
	ro := serveDashboard(t, q.in, admin.Config{})

	t.Run("OverviewCountsEveryCopyStateOfEveryNodeAsBeanstalkdDoes", func(t *testing.T) {
		t.Parallel()
		tb := b.newTab(t, ro.base, ro.login())
		tb.open("")
		tb.await(10*time.Second, `document.querySelector('tr[data-total]') !== null`, "the overview's totals row")
		rows := eval[[]overviewRow](tb, `Array.from(document.querySelectorAll('tr[data-tube]')).map(tr => ({
			tube: tr.dataset.tube, node: tr.dataset.node,
			counts: Object.fromEntries(Array.from(tr.querySelectorAll('td[data-count]'))
				.map(td => [td.dataset.count, td.textContent.trim()]))}))`)
		total := eval[map[string]string](tb, `Object.fromEntries(Array.from(
			document.querySelectorAll('tr[data-total] td[data-count]')).map(td => [td.dataset.count, td.textContent.trim()]))`)

		want := map[string]tubeCounts{}
		var sum tubeCounts
		for _, ep := range q.endpoints {
			c := countTube(t, ep, q.tube)
			want[ep] = c
			sum = sum.add(c)
		}
		require.Equal(t, q.seeded, sum, "beanstalkd holds the seeded copies")
		got := map[string]tubeCounts{}
		for _, r := range rows {
			if r.Tube != q.tube {
				continue
			}
			require.NotContains(t, got, r.Node, "one row per tube and node")
			got[r.Node] = r.parse(t)
		}
		require.Equal(t, want, got, "rows of tube %s: %+v", q.tube, rows)
		require.Equal(t, sum, overviewRow{Counts: total}.parse(t), "the totals row")
		tb.saveReadmeShot("overview.png")
	})

	t.Run("JobLookupShowsTheTimelineOfEveryPastedID", func(t *testing.T) {
		t.Parallel()
		tb := b.newTab(t, ro.base, ro.login())
		tb.open("jobs")
		ids := q.dead[0] + "\n" + q.ran
		tb.do("pasting two job IDs into the lookup form",
			chromedp.SetValue(chromedp.CSS(`#job-lookup textarea[name="ids"]`), ids),
			chromedp.Submit(chromedp.CSS(`#job-lookup textarea[name="ids"]`)),
		)
		article := func(id string) string { return `article.job[data-id="` + id + `"]` }
		tb.await(10*time.Second, fmt.Sprintf(`document.querySelector('%s ol.timeline li') !== null &&
			document.querySelector('%s ol.timeline li') !== null`, article(q.dead[0]), article(q.ran)),
			"timelines of both jobs")
		kinds := func(id string) []string {
			return eval[[]string](tb, fmt.Sprintf(`Array.from(document.querySelectorAll('%s ol.timeline li[data-kind]'))
				.map(li => li.dataset.kind)`, article(id)))
		}
		dead, ran := kinds(q.dead[0]), kinds(q.ran)
		require.Subset(t, dead, []string{"enqueued", "attempt", "dead"}, "the dead letter's timeline")
		require.Subset(t, ran, []string{"enqueued", "attempt", "end"}, "the timeline of the job that ran")
		require.NotContains(t, ran, "dead")
		lastErr := eval[string](tb, fmt.Sprintf(`(document.querySelector('%s .last-error') || {}).textContent || ''`, article(q.dead[0])))
		require.Contains(t, lastErr, "bad input "+q.deadBodies[0], "the dead letter's last error")
		require.Zero(t, eval[int](tb, `document.querySelectorAll('[data-action]').length`), "read-only: no action buttons")
		tb.saveReadmeShot("job.png")
	})

	t.Run("ReadOnlyShowsNoActionAndRefusesForgedPosts", func(t *testing.T) {
		t.Parallel()
		tb := b.newTab(t, ro.base, ro.login())
		for _, p := range []struct{ path, page string }{
			{"", "overview"}, {"nodes", "nodes"}, {"lateness", "lateness"},
			{"jobs?id=" + q.dead[0], "jobs"}, {"dead", "dead"}, {"cron", "cron"}, {"consumers", "consumers"},
		} {
			tb.open(p.path)
			body := eval[map[string]string](tb, `({page: document.body.dataset.page || '', actions: document.body.dataset.actions || ''})`)
			require.Equal(t, map[string]string{"page": p.page, "actions": "off"}, body, "<body> of /%s", p.path)
			actions := eval[[]string](tb, `Array.from(document.querySelectorAll('[data-action]')).map(e => e.outerHTML)`)
			require.Empty(t, actions, "read-only /%s renders action elements", p.path)
		}

		// Forged from the page itself: same origin, authenticated, the
		// header app.js sends; refused all the same.
		for _, route := range q.actionRoutes() {
			status := eval[int](tb, fmt.Sprintf(`fetch(%q, {method: 'POST', credentials: 'same-origin',
				headers: {'Content-Type': 'application/json', 'X-Requested-With': 'zerodq'},
				body: JSON.stringify({ids: [%q], all: 1})}).then(r => r.status)`, tb.url(route), q.dead[0]))
			require.Equal(t, http.StatusForbidden, status, "POST %s from the page", route)
		}
		// And straight over HTTP, as JSON and as a form.
		for _, route := range q.actionRoutes() {
			require.Equal(t, http.StatusForbidden, ro.post(t, route, "application/json",
				`{"ids":["`+q.dead[0]+`"]}`), "POST %s as JSON", route)
			require.Equal(t, http.StatusForbidden, ro.post(t, route, "application/x-www-form-urlencoded",
				"ids="+url.QueryEscape(q.dead[0])+"&all=1"), "POST %s as a form", route)
		}
		ctx := context.Background()
		n, err := q.in.CountDead(ctx, dq.DeadFilter{})
		require.NoError(t, err)
		require.Equal(t, len(q.dead), n, "the dead letters are still dead")
		paused, err := q.in.Paused(ctx)
		require.NoError(t, err)
		require.False(t, paused.Paused)
		info, err := q.in.Job(ctx, q.dead[0])
		require.NoError(t, err)
		require.Equal(t, dq.StateDead, info.State)
	})

	t.Run("PagesRequestNoOtherHostAndLogNoErrorNorCSPViolation", func(t *testing.T) {
		t.Parallel()
		tb := b.newTab(t, ro.base, ro.login())
		for _, path := range []string{"", "nodes", "lateness", "jobs?id=" + q.dead[0] + "&id=" + q.ran, "dead", "cron", "consumers"} {
			tb.open(path)
			tb.await(5*time.Second, `document.readyState === 'complete'`, "/%s loaded", path)
		}
		// The live page stays open until its first event: the EventSource
		// connected and app.js handled what it got.
		tb.open("lateness")
		tb.await(10*time.Second, `!!(document.querySelector('#lateness') || {dataset: {}}).dataset.updated`,
			"a lateness event over SSE")

		reqs := tb.requests()
		require.Contains(t, reqs, tb.url("static/app.js"), "the pages load their script")
		require.Contains(t, reqs, tb.url("static/app.css"), "the pages load their stylesheet")
		require.Empty(t, tb.foreignRequests(), "requests to hosts other than %s", tb.base.Host)
		require.Empty(t, tb.problems(), "console errors, exceptions or CSP violations")

		resp := ro.get(t, "")
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			require.Contains(t, csp, d)
		}
		require.NotContains(t, csp, "unsafe-inline")
	})

	t.Run("DarkSchemeGivesADarkBackgroundAndLightALightOne", func(t *testing.T) {
		t.Parallel()
		for _, scheme := range []string{"dark", "light"} {
			o := ro.login()
			o.dark = scheme == "dark"
			tb := b.newTab(t, ro.base, o)
			if !o.dark {
				tb.do("emulating a light scheme", tb.colorScheme("light"))
			}
			tb.open("")
			css := eval[string](tb, `getComputedStyle(document.body).backgroundColor`)
			r, g, bl, a, err := rgb(css)
			require.NoError(t, err)
			require.Equal(t, 1.0, a, "%s: the body's background %s is opaque", scheme, css)
			l := luminance(r, g, bl)
			if o.dark {
				require.Less(t, l, 0.3, "dark: body background %s", css)
			} else {
				require.Greater(t, l, 0.5, "light: body background %s", css)
			}
		}
	})

	t.Run("RetryingADeadLetterFromThePageRunsItExactlyOnce", func(t *testing.T) {
		t.Parallel()
		testRetryFromThePage(t, b)
	})

	t.Run("DeletingADeadLetterAsksFirstAndNoDeletesNothing", func(t *testing.T) {
		t.Parallel()
		testDeleteFromThePage(t, b)
	})

	t.Run("LatenessArrivesOverSSEAfterAnEnqueue", func(t *testing.T) {
		t.Parallel()
		testLatenessLive(t, b)
	})
}

// testRetryFromThePage turns actions on, refuses a retry forged by a page of
// another origin, then retries a dead letter with its button and counts the
// handler's runs.
func testRetryFromThePage(t *testing.T, b *browser) {
	c := newQueueConf(t)
	in := newInspector(t, c)
	var mu sync.Mutex
	runs, succeeded, failing := 0, 0, true
	startConsumer(t, c, func(ctx context.Context, body []byte) error {
		mu.Lock()
		defer mu.Unlock()
		runs++
		if failing {
			return fmt.Errorf("bad input %s: %w", body, dq.ErrSkipRetry)
		}
		succeeded++
		return nil
	})
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return runs, succeeded }
	id := enqueue(t, c, "flaky", 0)
	awaitDead(t, in, id)
	mu.Lock()
	failing = false
	mu.Unlock()

	d := serveDashboard(t, in, admin.Config{Actions: true})

	// A page of another origin that the operator's browser visits posts a
	// form to the retry route, with the operator's credentials.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form id="forged" method="post" action="%s">
			<input name="ids" value="%s"><input name="all" value="1"></form>`, d.base+"api/dead/retry", id)
	}))
	t.Cleanup(evil.Close)
	other := b.newTab(t, strings.Replace(evil.URL, "127.0.0.1", "localhost", 1), d.login())
	other.open("/")
	resp, err := chromedp.RunResponse(other.ctx, chromedp.Submit(chromedp.ID("forged")))
	require.NoError(t, err)
	require.Equal(t, int64(http.StatusForbidden), resp.Status, "a retry posted from another origin")

	tb := b.newTab(t, d.base, d.login())
	tb.open("dead")
	require.Equal(t, "on", eval[string](tb, `document.body.dataset.actions`))
	row := `#dead tr[data-id="` + id + `"]`
	tb.await(10*time.Second, `document.querySelector('`+row+` button[data-action="retry"]') !== null`, "the dead letter's retry button")
	require.Equal(t, 1, eval[int](tb, `document.querySelectorAll('#dead tr[data-id]').length`))
	r, s := count()
	require.Equal(t, [2]int{1, 0}, [2]int{r, s}, "before the retry: one failed run")

	tb.do("clicking retry", chromedp.Click(chromedp.CSS(row+` button[data-action="retry"]`)))
	dqtest.Eventually(t, 10*time.Second, func() bool { _, s := count(); return s >= 1 }, "the retried job ran")
	// Once every copy of the job is gone, no run can come: count them then.
	dqtest.Eventually(t, 10*time.Second, func() bool {
		var all tubeCounts
		for _, ep := range c.endpoints() {
			all = all.add(countTube(t, ep, c.Beanstalks[0].Tube))
		}
		return all == tubeCounts{}
	}, "the job's copies are gone")
	r, s = count()
	require.Equal(t, [2]int{2, 1}, [2]int{r, s}, "the retry ran the job exactly once")
	info, err := in.Job(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, dq.StateDone, info.State)
	n, err := in.CountDead(context.Background(), dq.DeadFilter{})
	require.NoError(t, err)
	require.Zero(t, n)

	audit, err := in.AuditLog(context.Background(), 10)
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(audit, func(e dq.AuditEntry) bool {
		return e.Who == d.user || strings.Contains(e.What, d.user) && strings.Contains(e.What, id)
	}), "the retry of %s is audited with the authenticated user %s: %+v", id, d.user, audit)
	require.Empty(t, tb.problems(), "console errors, exceptions or CSP violations")
	require.Empty(t, tb.foreignRequests())
}

// testDeleteFromThePage deletes a dead letter with its row's button: the
// page asks first, and an operator who answers no deletes nothing.
func testDeleteFromThePage(t *testing.T, b *browser) {
	c := newQueueConf(t)
	in := newInspector(t, c)
	cs := startConsumer(t, c, func(ctx context.Context, body []byte) error {
		return fmt.Errorf("bad input %s: %w", body, dq.ErrSkipRetry)
	})
	id := enqueue(t, c, "doomed", 0)
	awaitDead(t, in, id)
	copies := func() tubeCounts {
		var all tubeCounts
		for _, ep := range c.endpoints() {
			all = all.add(countTube(t, ep, c.Beanstalks[0].Tube))
		}
		return all
	}
	dqtest.Eventually(t, 10*time.Second, func() bool { return copies() == tubeCounts{Buried: 1} },
		"only the dead letter's buried copy is left")
	cs.Stop()
	d := serveDashboard(t, in, admin.Config{Actions: true})
	deadCount := func() int {
		n, err := in.CountDead(context.Background(), dq.DeadFilter{})
		require.NoError(t, err)
		return n
	}

	tb := b.newTab(t, d.base, d.login())
	tb.open("dead")
	button := `#dead tr[data-id="` + id + `"] button[data-action="delete"]`
	tb.await(10*time.Second, `document.querySelector('`+button+`') !== null`, "the dead letter's delete button")

	tb.refuse.Store(true)
	tb.do("clicking delete, answering no", chromedp.Click(chromedp.CSS(button)))
	dqtest.Eventually(t, 10*time.Second, func() bool { return len(tb.dialogs()) == 1 }, "the page asks before it deletes")
	require.Contains(t, tb.dialogs()[0], id, "the question names the dead letter")
	// The click's handler ran to its end once the page answers again.
	require.True(t, eval[bool](tb, `document.querySelector('`+button+`') !== null`))
	require.False(t, slices.ContainsFunc(tb.requests(), func(u string) bool { return strings.Contains(u, "/api/dead/delete") }),
		"no delete was posted after a no")
	require.Equal(t, 1, deadCount(), "the dead letter is still there")

	tb.refuse.Store(false)
	tb.do("clicking delete, answering yes", chromedp.Click(chromedp.CSS(button)))
	dqtest.Eventually(t, 10*time.Second, func() bool { return deadCount() == 0 }, "the dead letter is deleted")
	require.Len(t, tb.dialogs(), 2, "asked again")
	dqtest.Eventually(t, 10*time.Second, func() bool { return copies() == tubeCounts{} }, "the buried copy is deleted")
	require.Empty(t, tb.problems(), "console errors, exceptions or CSP violations")
}

// testLatenessLive watches the lateness page while a job is enqueued and
// run: the consumer's next registry entry reaches the page over SSE.
func testLatenessLive(t *testing.T, b *browser) {
	c := newQueueConf(t)
	in := newInspector(t, c)
	startConsumer(t, c, func(ctx context.Context, body []byte) error { return nil })
	d := serveDashboard(t, in, admin.Config{Poll: 200 * time.Millisecond})

	tb := b.newTab(t, d.base, d.login())
	tb.open("lateness")
	sec := `document.querySelector('#lateness')`
	require.True(t, eval[bool](tb, sec+` !== null && document.querySelector('#lateness-chart') !== null`),
		"the lateness section and its chart")
	before := eval[string](tb, sec+`.dataset.updated || ''`)
	enqueued := time.Now()
	enqueue(t, c, "late?", 0)
	tb.await(15*time.Second, fmt.Sprintf(`%s.dataset.updated !== %q && Number(%s.dataset.count) >= 1`, sec, before, sec),
		"a lateness event counting the job's start")
	updated, err := time.Parse(time.RFC3339, eval[string](tb, sec+`.dataset.updated`))
	require.NoError(t, err, "data-updated is RFC 3339")
	require.False(t, updated.Before(enqueued.Add(-time.Second).Truncate(time.Second)), "updated %v, enqueued %v", updated, enqueued)
	require.NotEmpty(t, strings.TrimSpace(eval[string](tb, `(document.querySelector('#lat-min') || {}).textContent || ''`)),
		"the minimum lateness is shown")
	require.Empty(t, tb.problems(), "console errors, exceptions or CSP violations")
}

// seededQueue is a queue in every state, with no consumer left running.
type seededQueue struct {
	in         *dq.Inspector
	tube       string
	endpoints  []string
	dead       []string // dead letters' job IDs
	deadBodies []string
	ran        string // a job that ran once
	seeded     tubeCounts
}

func seedQueue(t *testing.T) *seededQueue {
	t.Helper()
	c := newQueueConf(t)
	if os.Getenv(screenshotsEnv) != "" {
		// The README's pictures show a queue named as a user's would be;
		// the servers are this process's own, and no other test uses it.
		for i := range c.Beanstalks {
			c.Beanstalks[i].Tube = "orders"
		}
	}
	q := &seededQueue{in: newInspector(t, c), tube: c.Beanstalks[0].Tube, endpoints: c.endpoints()}
	cs := startConsumer(t, c, func(ctx context.Context, body []byte) error {
		if strings.HasPrefix(string(body), "dies") {
			return fmt.Errorf("bad input %s: %w", body, dq.ErrSkipRetry)
		}
		return nil
	})
	q.deadBodies = []string{"dies-1", "dies-2"}
	for _, body := range q.deadBodies {
		q.dead = append(q.dead, enqueue(t, c, body, 0))
	}
	q.ran = enqueue(t, c, "runs", 0)
	awaitDead(t, q.in, q.dead...)
	dqtest.Eventually(t, 10*time.Second, func() bool {
		info, err := q.in.Job(context.Background(), q.ran)
		return err == nil && info.State == dq.StateDone
	}, "job %s ran", q.ran)
	// Only the dead letters' buried copies are left once the spare copies
	// are deleted.
	dqtest.Eventually(t, 10*time.Second, func() bool {
		return q.count(t) == tubeCounts{Buried: len(q.dead)}
	}, "only the buried copies are left")
	cs.Stop()

	// With no consumer: jobs due now stay ready, later ones delayed, and
	// one ready copy is held reserved by a plain beanstalkd client.
	const ready, delayed = 3, 2
	for i := range ready {
		enqueue(t, c, "ready-"+strconv.Itoa(i), 0)
	}
	for i := range delayed {
		enqueue(t, c, "later-"+strconv.Itoa(i), time.Hour)
	}
	conn, err := beanstalk.DialTimeout("tcp", q.endpoints[0], time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	replicas := len(q.endpoints)
	q.seeded = tubeCounts{Ready: ready*replicas - 1, Reserved: 1, Delayed: delayed * replicas, Buried: len(q.dead)}
	dqtest.Eventually(t, 10*time.Second, func() bool {
		return q.count(t).Ready == ready*replicas
	}, "%d ready copies", ready*replicas)
	_, _, err = beanstalk.NewTubeSet(conn, q.tube).Reserve(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, q.seeded, q.count(t))
	return q
}

func (q *seededQueue) count(t *testing.T) tubeCounts {
	var all tubeCounts
	for _, ep := range q.endpoints {
		all = all.add(countTube(t, ep, q.tube))
	}
	return all
}

// actionRoutes are the routes that change the queue, relative to the prefix.
func (q *seededQueue) actionRoutes() []string {
	return []string{"api/jobs/" + q.dead[0] + "/revoke", "api/dead/retry", "api/dead/delete", "api/pause", "api/resume"}
}

// dashboard is a Dashboard served over HTTP on a loopback port.
type dashboard struct {
	base           string // the dashboard's root page, ending in "/"
	user, password string
}

// serveDashboard serves a Dashboard of in with c, behind basic auth for a
// user of its own, until t ends.
func serveDashboard(t *testing.T, in *dq.Inspector, c admin.Config) *dashboard {
	t.Helper()
	d := &dashboard{user: "ops", password: randomHex(8)}
	hash, err := bcrypt.GenerateFromPassword([]byte(d.password), bcrypt.MinCost)
	require.NoError(t, err)
	c.Users = map[string]string{d.user: string(hash)}
	dash, err := admin.New(c, in)
	require.NoError(t, err)
	srv := httptest.NewServer(dash)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, dash.Close())
	})
	prefix := c.Prefix
	if prefix == "" {
		prefix = "/zerodq"
	}
	d.base = srv.URL + strings.TrimSuffix(prefix, "/") + "/"
	return d
}

func (d *dashboard) login() tabOptions { return tabOptions{user: d.user, password: d.password} }

// get fetches path (relative to the dashboard's root) as the user.
func (d *dashboard) get(t *testing.T, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.base+path, nil)
	require.NoError(t, err)
	req.SetBasicAuth(d.user, d.password)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /%s", path)
	return resp
}

// post sends an action as the user from the dashboard's own origin, as
// app.js does, and returns the status.
func (d *dashboard) post(t *testing.T, route, contentType, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.base+route, strings.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth(d.user, d.password)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", "http://"+req.URL.Host)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-Requested-With", "zerodq")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// queueConf is a DqConf on the shared servers with a tube and key prefix of
// the test's own.
type queueConf struct{ dq.DqConf }

func newQueueConf(t *testing.T) queueConf {
	t.Helper()
	env := dqtest.Shared(t)
	name := dqtest.Name(t)
	var c dq.DqConf
	require.NoError(t, conf.FillDefault(&c))
	c.Redis = redis.RedisConf{Host: env.Redis.Addr(), Type: redis.NodeType}
	c.KeyPrefix = name
	for _, ep := range env.Endpoints() {
		c.Beanstalks = append(c.Beanstalks, dq.Beanstalk{Endpoint: ep, Tube: name})
	}
	return queueConf{c}
}

func (c queueConf) endpoints() []string {
	var eps []string
	for _, b := range c.Beanstalks {
		eps = append(eps, b.Endpoint)
	}
	return eps
}

func newInspector(t *testing.T, c queueConf) *dq.Inspector {
	t.Helper()
	in, err := dq.NewInspector(c.DqConf, dq.WithActor("browser-test"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	return in
}

// startConsumer runs a consumer of fn until t ends or Stop.
func startConsumer(t *testing.T, c queueConf, fn func(ctx context.Context, body []byte) error) dq.Consumer {
	t.Helper()
	cs, err := dq.NewConsumer(c.DqConf, dq.WithHandle(fn))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() {
		cs.Stop()
		<-done
	})
	return cs
}

// enqueue puts a job due after delay and returns its ID.
func enqueue(t *testing.T, c queueConf, body string, delay time.Duration) string {
	t.Helper()
	p, err := dq.NewProducer(c.DqConf)
	require.NoError(t, err)
	defer p.Close()
	id, err := p.Delay([]byte(body), delay)
	require.NoError(t, err)
	return id
}

// awaitDead waits until the jobs are dead letters with their bury recorded
// (before that, actions on them skip them: a consumer is still burying).
func awaitDead(t *testing.T, in *dq.Inspector, ids ...string) {
	t.Helper()
	dqtest.Eventually(t, 10*time.Second, func() bool {
		n, err := in.CountDead(context.Background(), dq.DeadFilter{})
		if err != nil || n != len(ids) {
			return false
		}
		for _, id := range ids {
			info, err := in.Job(context.Background(), id)
			if err != nil || info.State != dq.StateDead || !slices.ContainsFunc(info.Copies, func(c dq.CopyInfo) bool {
				return c.Fate == "dead letter"
			}) {
				return false
			}
		}
		return true
	}, "dead letters %v recorded", ids)
}

// tubeCounts are a tube's copies per state on a node, or summed over nodes.
type tubeCounts struct{ Ready, Delayed, Reserved, Buried int }

func (c tubeCounts) add(o tubeCounts) tubeCounts {
	return tubeCounts{c.Ready + o.Ready, c.Delayed + o.Delayed, c.Reserved + o.Reserved, c.Buried + o.Buried}
}

// countTube reads tube's counts on endpoint with stats-tube; a tube that
// does not exist holds nothing.
func countTube(t *testing.T, endpoint, tube string) tubeCounts {
	t.Helper()
	conn, err := beanstalk.DialTimeout("tcp", endpoint, time.Second)
	require.NoError(t, err)
	defer conn.Close()
	stats, err := (&beanstalk.Tube{Conn: conn, Name: tube}).Stats()
	if errors.Is(err, beanstalk.ErrNotFound) {
		return tubeCounts{}
	}
	require.NoError(t, err)
	n := func(k string) int {
		v, err := strconv.Atoi(stats[k])
		require.NoError(t, err, k)
		return v
	}
	return tubeCounts{n("current-jobs-ready"), n("current-jobs-delayed"), n("current-jobs-reserved"), n("current-jobs-buried")}
}

// overviewRow is a tube×node row of the overview as the page shows it.
type overviewRow struct {
	Tube   string            `json:"tube"`
	Node   string            `json:"node"`
	Counts map[string]string `json:"counts"`
}

func (r overviewRow) parse(t *testing.T) tubeCounts {
	t.Helper()
	n := func(k string) int {
		s, ok := r.Counts[k]
		require.True(t, ok, "no %s cell in %+v", k, r)
		v, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		require.NoError(t, err, "%s cell of %+v", k, r)
		return v
	}
	return tubeCounts{n("ready"), n("delayed"), n("reserved"), n("buried")}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
