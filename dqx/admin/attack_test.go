package admin

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWithAuthHookAcceptingNoUserIsRefused: a hook that answers ok with an
// empty user name (a session with no user in it) does not let the request
// in, nor act anonymously.
func TestWithAuthHookAcceptingNoUserIsRefused(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	hook := WithAuth(func(r *http.Request) (string, bool) { return "", true })
	s := serve(t, Config{Actions: true}, in, hook)
	for _, path := range []string{"/", "/api/overview", "/static/app.js"} {
		require.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodGet, path, "", false, nil).code, path)
	}
	require.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodPost, "/api/pause", "", false, nil).code)
	p, err := in.Paused(t.Context())
	require.NoError(t, err)
	require.False(t, p.Paused, "no one paused the queue")
	// White space is no name either.
	s = serve(t, Config{}, in, WithAuth(func(r *http.Request) (string, bool) { return " \t", true }))
	require.Equal(t, http.StatusUnauthorized, s.do(t, http.MethodGet, "/api/overview", "", false, nil).code)
}
