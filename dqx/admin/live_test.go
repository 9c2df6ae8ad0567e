package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/rest"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestBulkRetryIsReportedByAnotherReplica retries every dead letter from
// one dashboard and follows the operation to its end from another (a
// second replica behind a load balancer, with its own Inspector): each
// job then runs once more, once.
func TestBulkRetryIsReportedByAnotherReplica(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	var dying atomic.Bool
	dying.Store(true)
	var mu sync.Mutex
	runs := map[string]int{}
	consumer(t, c, func(ctx context.Context, body []byte) error {
		j, _ := dq.JobFromContext(ctx)
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		if dying.Load() {
			return fmt.Errorf("failing for now: %w", dq.ErrSkipRetry)
		}
		return nil
	})
	inA := inspector(t, c)
	var ids []string
	for i := range 4 {
		id, err := inA.EnqueueIn(t.Context(), []byte("job "+strconv.Itoa(i)), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// A dead letter is retried once its bury is recorded (before, a retry
	// skips it: "a consumer is burying it").
	dqtest.Eventually(t, 10*time.Second, func() bool {
		for _, id := range ids {
			j, err := inA.Job(t.Context(), id)
			if err != nil || j.State != dq.StateDead || !slices.ContainsFunc(j.Copies, func(c dq.CopyInfo) bool {
				return c.Fate == "dead letter"
			}) {
				return false
			}
		}
		return true
	}, "every job is a dead letter, its bury recorded")
	dying.Store(false)

	confA := authConf()
	confA.Actions = true
	a := serve(t, confA, inA)
	b := serve(t, authConf(), inspector(t, c)) // read-only: reporting needs no actions

	ans := a.do(t, http.MethodPost, "/api/dead/retry", `{"all":1}`, true, map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusAccepted, ans.code, ans.body)
	var op opAnswer
	require.NoError(t, json.Unmarshal([]byte(ans.body), &op))
	require.NotEmpty(t, op.OpID)
	require.Equal(t, len(ids), op.Matched)

	var got dq.BulkOp
	dqtest.Eventually(t, 10*time.Second, func() bool {
		r := b.get(t, "/api/ops/"+op.OpID)
		if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil {
			return false
		}
		return got.Finished
	}, "the other replica reports the operation finished")
	require.Equal(t, len(ids), got.Matched)
	require.Equal(t, len(ids), got.Done)
	require.Zero(t, got.Skipped)
	require.Equal(t, "retry", got.Verb)
	page := b.get(t, "/dead?op="+op.OpID)
	require.Contains(t, page.body, `<div id="op" class="op" data-op="`+op.OpID+`" data-done="4" data-matched="4" data-finished="true">`)
	require.Equal(t, http.StatusNotFound, b.get(t, "/api/ops/0123456789abcdef").code)

	dqtest.Eventually(t, 10*time.Second, func() bool {
		for _, id := range ids {
			if j, err := inA.Job(t.Context(), id); err != nil || j.State != dq.StateDone {
				return false
			}
		}
		return true
	}, "every retried job ran to done")
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		require.Equal(t, 2, runs[id], "job %s: its dying run and its retry, once each", id)
	}
	log, err := inA.AuditLog(t.Context(), 10)
	require.NoError(t, err)
	require.Equal(t, testUser, log[0].Who)
	require.Equal(t, "dead retry 4 entries", log[0].What)
}

// TestEventsDeliverLatenessAfterAJobRuns watches the event stream while a
// consumer runs a job: a lateness event counts its start.
func TestEventsDeliverLatenessAfterAJobRuns(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	s := serve(t, authConf(), in)
	ev := openEvents(t, s.url("/api/events"), true)
	consumer(t, c, func(ctx context.Context, body []byte) error { return nil })
	_, err := in.EnqueueIn(t.Context(), []byte("now"), 0)
	require.NoError(t, err)
	got := ev.await(t, 15*time.Second, func(e event) bool {
		if e.name != "lateness" {
			return false
		}
		var v latenessView
		return json.Unmarshal([]byte(e.data), &v) == nil && v.Count > 0
	})
	var v latenessView
	require.NoError(t, json.Unmarshal([]byte(got.data), &v))
	require.EqualValues(t, 1, v.Count)
	require.Equal(t, in.Queue(), v.Queue)
	require.GreaterOrEqual(t, v.MinMs, 0.0, "never early")
	require.Len(t, v.Buckets, len(dq.LatenessBounds)+1)
	var sum int64
	for _, n := range v.Buckets {
		sum += n
	}
	require.EqualValues(t, 1, sum)
	// The page shows the same interval.
	page := s.get(t, "/lateness")
	require.Contains(t, page.body, `<section id="lateness" data-count="1"`)
}

// TestOnePollerServesEverySubscriber: however many streams are open, one
// poller reads the queue; it stops with the last stream, and Close ends
// the streams still open. Idle streams get a heartbeat comment.
func TestOnePollerServesEverySubscriber(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	d, err := New(authConf(), in)
	require.NoError(t, err)
	d.heartbeat = 50 * time.Millisecond
	hs := httptest.NewServer(d)
	t.Cleanup(func() {
		_ = d.Close()
		hs.Close()
	})
	s := &server{Server: hs, d: d}
	require.False(t, d.hub.running(), "no poller before the first subscriber")

	var streams []*stream
	for range 3 {
		streams = append(streams, openEvents(t, s.url("/api/events"), true))
	}
	for _, st := range streams {
		st.await(t, 5*time.Second, func(e event) bool { return e.name == "overview" })
		st.await(t, 5*time.Second, func(e event) bool { return e.name == "comment" && e.data == ": ping" })
	}
	require.True(t, d.hub.running())
	d.hub.mu.Lock()
	require.Len(t, d.hub.subs, 3)
	d.hub.mu.Unlock()
	for _, st := range streams {
		st.close()
	}
	dqtest.Eventually(t, 5*time.Second, func() bool { return !d.hub.running() }, "the poller stops with the last subscriber")

	last := openEvents(t, s.url("/api/events"), true)
	last.await(t, 5*time.Second, func(e event) bool { return e.name == "overview" })
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	dqtest.Eventually(t, 5*time.Second, func() bool {
		select {
		case _, open := <-last.events:
			return !open
		default:
			return false
		}
	}, "Close ends the open stream")
	require.False(t, d.hub.running())
	a := s.get(t, "/api/events")
	require.Equal(t, http.StatusServiceUnavailable, a.code, "a closed dashboard takes no new stream")
}

// TestMountServesUnderAPrefixOnARestServer mounts the dashboard on a real
// go-zero server with its default 3s timeout: pages, API and static assets
// answer under the prefix, with authentication; and the event stream stays
// open past the 3s the default timeout would cut it at.
func TestMountServesUnderAPrefixOnARestServer(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)

	var rc rest.RestConf
	require.NoError(t, conf.FillDefault(&rc))
	rc.Name = "dashboard-test"
	rc.Host = "127.0.0.1"
	rc.Port = freePort(t)
	rc.Log.Mode = "console"
	rc.Log.Level = "severe"
	require.Equal(t, int64(3000), rc.Timeout, "go-zero's default timeout")
	srv := rest.MustNewServer(rc)
	dc := authConf()
	dc.Prefix = "/ops/queue/"
	d, err := Mount(srv, dc, in)
	require.NoError(t, err)
	go srv.Start()
	t.Cleanup(func() {
		_ = d.Close()
		srv.Stop()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d/ops/queue", rc.Port)
	dqtest.Eventually(t, 5*time.Second, func() bool {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", rc.Port))
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, "the server listens")

	for path, want := range map[string]string{
		"":                `data-page="overview"`,
		"/nodes":          `data-page="nodes"`,
		"/lateness":       `<svg id="lateness-chart"`,
		"/jobs":           `<form id="job-lookup"`,
		"/dead":           `<table id="dead">`,
		"/consumers":      `<table id="consumers">`,
		"/api/overview":   `"queue":"` + in.Queue() + `"`,
		"/api/dead/count": `{"count":0}`,
		"/static/app.css": "prefers-color-scheme",
	} {
		a := doURL(t, http.MethodGet, base+path, "", true, nil)
		require.Equal(t, http.StatusOK, a.code, "%s: %s", path, a.body)
		require.Contains(t, a.body, want, path)
		require.Equal(t, csp, a.header.Get("Content-Security-Policy"), path)
		require.Equal(t, http.StatusUnauthorized, doURL(t, http.MethodGet, base+path, "", false, nil).code, path)
		// HEAD (a health check, curl -I) answers as GET does, as on the
		// dashboard served alone.
		head := doURL(t, http.MethodHead, base+path, "", true, nil)
		require.Equal(t, http.StatusOK, head.code, "HEAD %s", path)
		require.Empty(t, head.body, "HEAD %s", path)
	}
	head := doURL(t, http.MethodHead, base+"/api/events", "", true, nil)
	require.Equal(t, http.StatusOK, head.code, "HEAD /api/events")
	require.Contains(t, head.header.Get("Content-Type"), "text/event-stream")
	require.Zero(t, d.hub.subscribers(), "HEAD holds no stream")
	wrong := doURL(t, http.MethodDelete, base+"/api/overview", "", true, nil)
	require.Equal(t, http.StatusMethodNotAllowed, wrong.code)
	require.Contains(t, wrong.header.Get("Allow"), http.MethodGet)
	page := doURL(t, http.MethodGet, base+"/nodes", "", true, nil)
	require.Contains(t, page.body, `src="/ops/queue/static/app.js"`, "assets linked under the prefix")
	require.Contains(t, page.body, `<a href="/ops/queue/dead">`)
	require.Equal(t, http.StatusForbidden, doURL(t, http.MethodPost, base+"/api/pause", "", true, nil).code)
	require.Equal(t, http.StatusNotFound, doURL(t, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/zerodq", rc.Port), "", true, nil).code)

	ev := openEvents(t, base+"/api/events", true)
	require.Equal(t, http.StatusOK, ev.res.StatusCode)
	opened := time.Now()
	ev.await(t, 10*time.Second, func(e event) bool {
		return e.name == "overview" && time.Since(opened) > 3500*time.Millisecond
	})
}

// freePort finds a loopback port nobody listens on.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestDashboardLeavesNoGoroutineAfterClose: the poller, the streams and
// their heartbeats end with Close.
func TestDashboardLeavesNoGoroutineAfterClose(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	c := testConf(t)
	in := inspector(t, c)
	d, err := New(authConf(), in)
	require.NoError(t, err)
	d.heartbeat = 20 * time.Millisecond
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	s := &server{Server: hs, d: d}
	for range 2 {
		ev := openEvents(t, s.url("/api/events"), true)
		ev.await(t, 5*time.Second, func(e event) bool { return e.name == "overview" })
	}
	require.NoError(t, d.Close())
	require.False(t, d.hub.running())
}
