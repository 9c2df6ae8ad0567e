package admin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// subscribers is how many event streams the hub feeds.
func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// TestAnEventStreamThatStopsReadingIsDropped: a client that opens the
// event stream and never reads it fills the connection's buffers; its
// stream is ended when a write cannot go out within a heartbeat, so it
// holds no goroutine, connection or poller for good.
func TestAnEventStreamThatStopsReadingIsDropped(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	d, err := New(authConf(), in)
	require.NoError(t, err)
	d.heartbeat = 200 * time.Millisecond
	hs := httptest.NewServer(d)
	t.Cleanup(func() {
		_ = d.Close()
		hs.Close()
	})
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	cred := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPass))
	_, err = fmt.Fprintf(conn, "GET %s/api/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\n\r\n",
		d.Prefix(), hs.Listener.Addr(), cred)
	require.NoError(t, err)
	dqtest.Eventually(t, 5*time.Second, func() bool { return d.hub.subscribers() == 1 }, "the stream is open")
	// Events far larger than the socket buffers; the client reads none.
	big := strings.Repeat("x", 256<<10)
	dqtest.Eventually(t, 15*time.Second, func() bool {
		d.hub.publish("overview", in.Queue(), big)
		return d.hub.subscribers() == 0
	}, "the stalled stream is dropped")
	dqtest.Eventually(t, 5*time.Second, func() bool { return !d.hub.running() }, "the poller stops with it")
}

// firstOverviews reads st's events until it has one overview of each of
// queues, and returns the first of each.
func firstOverviews(t *testing.T, st *stream, queues ...string) map[string]overview {
	t.Helper()
	out := map[string]overview{}
	for len(out) < len(queues) {
		ev := st.await(t, 5*time.Second, func(e event) bool { return e.name == "overview" })
		var o overview
		require.NoError(t, json.Unmarshal([]byte(ev.data), &o))
		if _, ok := out[o.Queue]; !ok {
			out[o.Queue] = o
		}
	}
	return out
}

// TestANewEventStreamStartsWithEveryQueuesCurrentOverview: a stream
// opened while the poller runs starts with the latest overview of every
// queue (not only of the queue polled last), and one opened after the
// poller stopped starts with the queue as it is now, not as it was when
// the last stream left.
func TestANewEventStreamStartsWithEveryQueuesCurrentOverview(t *testing.T) {
	t.Parallel()
	c1, c2 := testConf(t), testConf(t)
	c2.KeyPrefix += "-2"
	for i := range c2.Beanstalks {
		c2.Beanstalks[i].Tube += "-2"
	}
	in1, in2 := inspector(t, c1), inspector(t, c2)
	require.NotEqual(t, in1.Queue(), in2.Queue())
	conf := authConf()
	conf.Poll = time.Hour // one poll per poller start
	s := serve(t, conf, in1, WithQueue(in2))

	first := openEvents(t, s.url("/api/events"), true)
	firstOverviews(t, first, in1.Queue(), in2.Queue())
	second := openEvents(t, s.url("/api/events"), true)
	firstOverviews(t, second, in1.Queue(), in2.Queue())

	first.close()
	second.close()
	dqtest.Eventually(t, 5*time.Second, func() bool { return !s.d.hub.running() }, "the poller stops")
	require.NoError(t, in1.Pause(t.Context()))
	third := openEvents(t, s.url("/api/events"), true)
	o := firstOverviews(t, third, in1.Queue(), in2.Queue())
	require.True(t, o[in1.Queue()].Paused.Paused, "the first overview shows the queue paused since")
}

// TestEventStreamsAreBounded: a dashboard takes a bounded number of event
// streams at once; one more is refused with 503 and a Retry-After, and
// gets in once another leaves.
func TestEventStreamsAreBounded(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	s := serve(t, authConf(), inspector(t, c))
	require.Equal(t, 100, s.d.maxStreams, "the default bound")
	s.d.maxStreams = 2
	a := openEvents(t, s.url("/api/events"), true)
	b := openEvents(t, s.url("/api/events"), true)
	require.Equal(t, http.StatusOK, a.res.StatusCode)
	require.Equal(t, http.StatusOK, b.res.StatusCode)
	over := openEvents(t, s.url("/api/events"), true)
	require.Equal(t, http.StatusServiceUnavailable, over.res.StatusCode)
	require.NotEmpty(t, over.res.Header.Get("Retry-After"))
	a.close()
	dqtest.Eventually(t, 5*time.Second, func() bool { return s.d.hub.subscribers() == 1 }, "the first stream left")
	again := openEvents(t, s.url("/api/events"), true)
	require.Equal(t, http.StatusOK, again.res.StatusCode)
	again.await(t, 5*time.Second, func(e event) bool { return e.name == "overview" })
}

// TestHeadOnTheEventStreamHoldsNoStream: HEAD /api/events (a health check,
// curl -I) answers the stream's headers and ends; it takes no subscriber
// slot and starts no poller.
func TestHeadOnTheEventStreamHoldsNoStream(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	s := serve(t, authConf(), inspector(t, c))
	a := s.do(t, http.MethodHead, "/api/events", "", true, nil)
	require.Equal(t, http.StatusOK, a.code)
	require.Contains(t, a.header.Get("Content-Type"), "text/event-stream")
	require.Zero(t, s.d.hub.subscribers())
	require.False(t, s.d.hub.running())
	require.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodHead, "/api/events", "", false, nil).code)
}
