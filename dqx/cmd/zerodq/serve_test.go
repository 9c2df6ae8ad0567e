package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a zerodq serve running in-process.
type served struct {
	url            string
	stdout, stderr *syncBuffer
	stop           func() int // interrupts it and returns its exit code
}

var servedURL = regexp.MustCompile(`at (http://\S+) \(`)

// startServe runs zerodq serve on the bundle's yaml and waits for it to
// print its URL.
func (b *bundle) startServe(t *testing.T, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	code := make(chan int, 1)
	go func() {
		code <- runCtx(ctx, append([]string{"-f", b.file, "serve"}, args...), s.stdout, s.stderr)
	}()
	var once sync.Once
	exit := -1
	s.stop = func() int {
		once.Do(func() {
			cancel()
			exit = <-code
		})
		return exit
	}
	t.Cleanup(func() { s.stop() })
	dqtest.Eventually(t, 10*time.Second, func() bool {
		m := servedURL.FindStringSubmatch(s.stdout.String())
		if m != nil {
			s.url = m[1]
		}
		return m != nil
	}, "serve prints its URL (stderr: %s)", s.stderr)
	return s
}

// appendYaml adds lines to the bundle's yaml.
func (b *bundle) appendYaml(t *testing.T, lines string) {
	t.Helper()
	f, err := os.OpenFile(b.file, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(lines)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func get(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

// TestServeOnLoopbackWithoutAuthSaysSoAndServes: with no account anywhere,
// serve on 127.0.0.1 warns on stderr that it runs without authentication,
// serves the dashboard read-only, and exits cleanly on an interrupt.
func TestServeOnLoopbackWithoutAuthSaysSoAndServes(t *testing.T) {
	t.Setenv(usersEnvDefault, "")
	b := setup(t, setupOpts{})
	s := b.startServe(t, "--listen", "127.0.0.1:0")
	require.Contains(t, s.stdout.String(), "(read-only)")
	require.Regexp(t, `WARNING: no authentication configured; serving without it because 127\.0\.0\.1:0 is a loopback address`,
		s.stderr.String())
	code, body := get(t, s.url, "", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `data-page="overview"`)
	require.Contains(t, body, `data-actions="off"`)
	code, _ = get(t, s.url+"/api/overview", "", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, exitOK, s.stop())
}

// TestServeRefusesANonLoopbackAddressWithoutAuth: no account and an
// address others can reach is a usage error, and nothing listens.
func TestServeRefusesANonLoopbackAddressWithoutAuth(t *testing.T) {
	t.Setenv(usersEnvDefault, "")
	b := setup(t, setupOpts{})
	r := b.zerodq(t, "serve", "--listen", "0.0.0.0:0")
	r.failed(t, exitUsage, "refusing to serve on 0.0.0.0:0 without authentication")
}

// TestServeTakesAccountsFromTheConfigOrTheEnvironment: accounts in the
// yaml's Dashboard section, or in ZERODQ_DASHBOARD_USERS, are required on
// every route; with them, serve may listen beyond loopback.
func TestServeTakesAccountsFromTheConfigOrTheEnvironment(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)

	t.Setenv(usersEnvDefault, "")
	b := setup(t, setupOpts{})
	b.appendYaml(t, "Dashboard:\n  Prefix: /\n  Actions: true\n  Users:\n    ops: '"+string(hash)+"'\n")
	s := b.startServe(t, "--listen", "127.0.0.1:0")
	require.NotContains(t, s.stderr.String(), "WARNING")
	require.Contains(t, s.stdout.String(), "(actions on)")
	code, _ := get(t, s.url, "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = get(t, s.url, "ops", "wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := get(t, s.url, "ops", "s3cret")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `data-actions="on"`)
	require.Equal(t, exitOK, s.stop())

	t.Setenv(usersEnvDefault, "viewer:"+string(hash))
	b = setup(t, setupOpts{})
	s = b.startServe(t, "--listen", "0.0.0.0:0")
	code, _ = get(t, regexp.MustCompile(`0\.0\.0\.0|\[::\]`).ReplaceAllString(s.url, "127.0.0.1")+"/api/nodes", "viewer", "s3cret")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, exitOK, s.stop())
}
