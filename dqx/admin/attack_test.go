package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
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

// TestBulkActionBodiesAreBounded: a bulk action's body over its limit is
// refused with 413 whether JSON or a form (as go-zero's MaxBytes answers
// in front of a mounted dashboard), and a list of more IDs than one
// operation takes with 400, each before anything is started.
func TestBulkActionBodiesAreBounded(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	conf := authConf()
	conf.Actions = true
	s := serve(t, conf, in)
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}

	huge := `{"ids":["` + strings.Repeat("a", maxActionBody) + `"]}`
	a := s.do(t, http.MethodPost, "/api/dead/retry", huge, true, same)
	require.Equal(t, http.StatusRequestEntityTooLarge, a.code, a.body)
	form := map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
	a = s.do(t, http.MethodPost, "/api/dead/delete", "ids="+strings.Repeat("b", maxActionBody), true, form)
	require.Equal(t, http.StatusRequestEntityTooLarge, a.code, a.body)

	const most = 10000 // IDs one operation takes
	ids := make([]string, most+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("%026d", i)
	}
	b, err := json.Marshal(map[string][]string{"ids": ids})
	require.NoError(t, err)
	require.Less(t, len(b), maxActionBody)
	a = s.do(t, http.MethodPost, "/api/dead/delete", string(b), true, same)
	require.Equal(t, http.StatusBadRequest, a.code, a.body)
	require.Contains(t, a.body, "at most")
	a = s.do(t, http.MethodPost, "/api/dead/retry", "ids="+strings.Join(ids, ","), true, form)
	require.Equal(t, http.StatusBadRequest, a.code, a.body)

	// The largest list taken is taken.
	b, err = json.Marshal(map[string][]string{"ids": ids[:most]})
	require.NoError(t, err)
	a = s.do(t, http.MethodPost, "/api/dead/retry", string(b), true, same)
	require.Equal(t, http.StatusAccepted, a.code, a.body)
}

// TestPastedIDsInAFormSplitAsInTheLookup: IDs pasted in a textarea and
// posted as a form come with the browser's CRLF line ends (and maybe
// tabs); the action acts on the IDs themselves, split as the job lookup
// splits them, not on "ID\r".
func TestPastedIDsInAFormSplitAsInTheLookup(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	conf := authConf()
	conf.Actions = true
	s := serve(t, conf, in)
	form := map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
	a := s.do(t, http.MethodPost, "/api/dead/retry", "ids="+url.QueryEscape("aaa\r\nbbb\tccc,\r\nddd\r\n"), true, form)
	require.Equal(t, http.StatusAccepted, a.code, a.body)
	var op opAnswer
	require.NoError(t, json.Unmarshal([]byte(a.body), &op))
	got, err := in.Bulk(t.Context(), op.OpID)
	require.NoError(t, err)
	require.Equal(t, []string{"aaa", "bbb", "ccc", "ddd"}, got.Select.IDs)
}

// TestPasswordChecksRunFewAtATime: each basic-auth check is a bcrypt
// comparison, costly by design; a flood of wrong passwords, which no
// cache answers, runs only a few comparisons at once (the others wait),
// so it cannot take every core of the service the dashboard is mounted in.
func TestPasswordChecksRunFewAtATime(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	s := serve(t, authConf(), inspector(t, c))
	a := s.d.auth
	var running atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the server closes, should an assertion fail
	compare := a.compare
	a.compare = func(hash, pass []byte) error {
		running.Add(1)
		defer running.Add(-1)
		<-release
		return compare(hash, pass)
	}
	const n = 10
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, s.url("/api/overview"), nil)
			if err != nil {
				codes <- 0
				return
			}
			req.SetBasicAuth(testUser, "wrong")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	dqtest.Eventually(t, 5*time.Second, func() bool { return running.Load()+a.waiting.Load() == n },
		"every request reached its check")
	require.LessOrEqual(t, running.Load(), int64(runtime.GOMAXPROCS(0)+1)/2, "a few comparisons at once")
	require.Less(t, running.Load(), int64(n))
	letGo()
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusUnauthorized, code)
	}
	require.Zero(t, a.waiting.Load())
	require.Equal(t, http.StatusOK, s.get(t, "/api/overview").code, "the right password still gets in")
}
