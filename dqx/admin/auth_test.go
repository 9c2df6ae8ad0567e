package admin

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// actionRoutes are every route that changes the queue, with a body it
// would accept.
var actionRoutes = []struct{ path, body string }{
	{"/api/jobs/01m8n8grtap2mtdg1v2bpbc9fw/revoke", ""},
	{"/api/dead/retry", `{"all":true}`},
	{"/api/dead/delete", `{"all":true}`},
	{"/api/pause", ""},
	{"/api/resume", ""},
}

// TestEveryActionRouteIsRefusedWhenActionsAreOff posts to every action
// route of a read-only dashboard with valid credentials, from its own
// origin: each answers 403 and the queue is left as it was.
func TestEveryActionRouteIsRefusedWhenActionsAreOff(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	s := serve(t, authConf(), in)
	// The table covers every action route the dashboard has.
	n := 0
	for _, rt := range s.d.routes {
		if rt.kind == kindAction {
			n++
		}
	}
	require.Len(t, actionRoutes, n, "a new action route needs a row here")
	for _, rt := range actionRoutes {
		a := s.do(t, http.MethodPost, rt.path, rt.body, true, map[string]string{"Sec-Fetch-Site": "same-origin"})
		require.Equal(t, http.StatusForbidden, a.code, rt.path)
		require.Contains(t, a.body, "read-only", rt.path)
	}
	p, err := in.Paused(t.Context())
	require.NoError(t, err)
	require.False(t, p.Paused, "a refused pause paused nothing")
	log, err := in.AuditLog(t.Context(), 10)
	require.NoError(t, err)
	require.Empty(t, log, "nothing was done, nothing audited")
	// And no page offers an action.
	for _, page := range []string{"/", "/jobs?id=01m8n8grtap2mtdg1v2bpbc9fw", "/dead"} {
		a := s.get(t, page)
		require.Equal(t, http.StatusOK, a.code)
		require.Contains(t, a.body, `data-actions="off"`)
		require.NotContains(t, a.body, "data-action=", page)
	}
}

// TestEveryRouteNeedsAuthentication asks pages, API, the event stream and
// actions without credentials, with a wrong password and with an unknown
// user (401 each), then with the right ones (200).
func TestEveryRouteNeedsAuthentication(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	s := serve(t, authConf(), inspector(t, c))
	for _, path := range []string{"/", "/nodes", "/api/overview", "/api/dead/count", "/static/app.js", "/api/events"} {
		a := s.do(t, http.MethodGet, path, "", false, nil)
		require.Equal(t, http.StatusUnauthorized, a.code, path)
		require.Contains(t, a.header.Get("WWW-Authenticate"), "Basic", path)
		for _, cred := range [][2]string{{testUser, "wrong"}, {"nobody", testPass}, {strings.ToUpper(testUser), testPass}} {
			req, err := http.NewRequest(http.MethodGet, s.url(path), nil)
			require.NoError(t, err)
			req.SetBasicAuth(cred[0], cred[1])
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s as %s", path, cred[0])
		}
	}
	for _, rt := range actionRoutes {
		a := s.do(t, http.MethodPost, rt.path, rt.body, false, nil)
		require.Equal(t, http.StatusUnauthorized, a.code, rt.path)
	}
	for _, path := range []string{"/", "/nodes", "/api/overview", "/api/dead/count", "/static/app.js"} {
		require.Equal(t, http.StatusOK, s.get(t, path).code, path)
	}
	ev := openEvents(t, s.url("/api/events"), true)
	require.Equal(t, http.StatusOK, ev.res.StatusCode)
	require.Contains(t, ev.res.Header.Get("Content-Type"), "text/event-stream")
}

// TestWithAuthAuthenticatesFromTheServicesSession lets a hook accept a
// request by its cookie; without the cookie and without basic auth, 401.
func TestWithAuthAuthenticatesFromTheServicesSession(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	hook := WithAuth(func(r *http.Request) (string, bool) {
		ck, err := r.Cookie("session")
		if err != nil || ck.Value != "valid" {
			return "", false
		}
		return "alice", true
	})
	s := serve(t, Config{}, inspector(t, c), hook)
	require.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodGet, "/api/overview", "", false, nil).code)
	a := s.do(t, http.MethodGet, "/", "", false, map[string]string{"Cookie": "session=valid"})
	require.Equal(t, http.StatusOK, a.code)
	require.Contains(t, a.body, `<span class="user">alice</span>`)
}

// TestNewRefusesADashboardWithoutAuthentication: no accounts and no hook
// is an error unless WithInsecure says so; accounts may come from the
// environment variable UsersEnv names.
func TestNewRefusesADashboardWithoutAuthentication(t *testing.T) {
	c := testConf(t)
	in := inspector(t, c)
	_, err := New(Config{}, in)
	require.ErrorIs(t, err, ErrNoAuth)
	d, err := New(Config{}, in, WithInsecure())
	require.NoError(t, err)
	require.NoError(t, d.Close())

	_, err = New(Config{Users: map[string]string{"ops": "plain text"}}, in)
	require.ErrorIs(t, err, ErrBadConfig)

	t.Setenv("TEST_DASHBOARD_USERS", "ops:"+testHash())
	s := serve(t, Config{UsersEnv: "TEST_DASHBOARD_USERS"}, in)
	require.Equal(t, http.StatusOK, s.get(t, "/api/consumers").code)
	t.Setenv("TEST_DASHBOARD_USERS", "ops")
	_, err = New(Config{UsersEnv: "TEST_DASHBOARD_USERS"}, in)
	require.ErrorIs(t, err, ErrBadConfig)
	t.Setenv("TEST_DASHBOARD_USERS", "")
	_, err = New(Config{UsersEnv: "TEST_DASHBOARD_USERS"}, in)
	require.True(t, errors.Is(err, ErrNoAuth))
}

// TestCrossSiteActionsAreRefused: with actions on, a POST another site's
// page makes (Sec-Fetch-Site cross-site, or an Origin of another host) is
// refused with 403 and does nothing; the same POST from the dashboard's
// own page pauses the queue and is audited with the user.
func TestCrossSiteActionsAreRefused(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	conf := authConf()
	conf.Actions = true
	s := serve(t, conf, in)
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example"},
	} {
		a := s.do(t, http.MethodPost, "/api/pause", "", true, hdr)
		require.Equal(t, http.StatusForbidden, a.code, "%v", hdr)
	}
	p, err := in.Paused(t.Context())
	require.NoError(t, err)
	require.False(t, p.Paused)

	origin := strings.TrimSuffix(s.URL, "/")
	a := s.do(t, http.MethodPost, "/api/pause", "", true, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": origin})
	require.Equal(t, http.StatusOK, a.code, a.body)
	p, err = in.Paused(t.Context())
	require.NoError(t, err)
	require.True(t, p.Paused)
	log, err := in.AuditLog(t.Context(), 10)
	require.NoError(t, err)
	var saw bool
	for _, e := range log {
		if e.Who == testUser && e.What == "pause" {
			saw = true
		}
	}
	require.True(t, saw, "the pause is audited with the user: %+v", log)
	// A tool with no browser headers may act too (it has the credentials).
	a = s.do(t, http.MethodPost, "/api/resume", "", true, nil)
	require.Equal(t, http.StatusOK, a.code, a.body)
}
