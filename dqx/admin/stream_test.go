package admin

import (
	"encoding/base64"
	"fmt"
	"net"
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
		d.hub.publish("overview", big)
		return d.hub.subscribers() == 0
	}, "the stalled stream is dropped")
	dqtest.Eventually(t, 5*time.Second, func() bool { return !d.hub.running() }, "the poller stops with it")
}
