package admin

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostRequest sends a request whose Host header is host, to s's listener.
func hostRequest(t *testing.T, s *server, method, path, host string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, s.url(path), nil)
	require.NoError(t, err)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestDashboardWithoutAuthenticationAnswersOnlyLoopbackHosts: zerodq
// serve's no-authentication mode relies on listening on 127.0.0.1, which a
// page on another site reaches through DNS rebinding (its own name, now
// resolving to 127.0.0.1: Host and Origin both say evil.example, so the
// same-origin check passes). Such a dashboard answers only requests
// addressed to a loopback host.
func TestDashboardWithoutAuthenticationAnswersOnlyLoopbackHosts(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	s := serve(t, Config{Actions: true}, in, WithInsecure())
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST", "[::1]:" + port, "127.0.0.2"} {
		require.Equal(t, http.StatusOK, hostRequest(t, s, http.MethodGet, "/api/overview", host, nil), host)
	}
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1.evil.example:" + port,
		"localhost.evil.example", "10.0.0.1:" + port} {
		require.Equal(t, http.StatusForbidden, hostRequest(t, s, http.MethodGet, "/api/overview", host, nil), host)
		require.Equal(t, http.StatusForbidden, hostRequest(t, s, http.MethodGet, "/static/app.js", host, nil), host)
	}
	code := hostRequest(t, s, http.MethodPost, "/api/pause", "evil.example:"+port,
		map[string]string{"Origin": "http://evil.example:" + port, "Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusForbidden, code)
	p, err := in.Paused(t.Context())
	require.NoError(t, err)
	require.False(t, p.Paused, "the rebound page paused nothing")
	// A dashboard with accounts is reachable under any name.
	s = serve(t, authConf(), in)
	req, err := http.NewRequest(http.MethodGet, s.url("/api/overview"), nil)
	require.NoError(t, err)
	req.Host = "dash.example"
	req.SetBasicAuth(testUser, testPass)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}
