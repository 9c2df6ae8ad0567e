package admin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"
	"golang.org/x/crypto/bcrypt"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestMain runs the package's tests against real servers and stops the
// shared ones at the end; ZERODQ_TEST_LOGS=1 shows the libraries' logs.
func TestMain(m *testing.M) {
	if os.Getenv("ZERODQ_TEST_LOGS") == "" {
		logx.Disable()
	}
	dqtest.Main(m)
}

// testConf returns a DqConf on the shared servers with a tube and a key
// prefix of the test's own.
func testConf(t testing.TB) dq.DqConf {
	t.Helper()
	e := dqtest.Shared(t)
	name := dqtest.Name(t)
	c := dq.DqConf{
		Redis:           redis.RedisConf{Host: e.Redis.Addr(), Type: redis.NodeType},
		KeyPrefix:       name,
		DialTimeout:     300 * time.Millisecond,
		IOTimeout:       500 * time.Millisecond,
		MaxRetries:      1,
		RetryBackoff:    time.Hour,
		MaxRetryBackoff: time.Hour,
		TTR:             5 * time.Second,
		History:         time.Hour,
	}
	for _, ep := range e.Endpoints() {
		c.Beanstalks = append(c.Beanstalks, dq.Beanstalk{Endpoint: ep, Tube: name})
	}
	return c
}

// inspector opens an Inspector of c, closed when t ends.
func inspector(t testing.TB, c dq.DqConf, opts ...dq.InspectorOption) *dq.Inspector {
	t.Helper()
	in, err := dq.NewInspector(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	return in
}

// The test account; bcrypt's minimum cost keeps the tests quick.
const (
	testUser = "ops"
	testPass = "correct horse"
)

var testHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPass), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// authConf is a Config with the test account, polling fast.
func authConf() Config {
	return Config{Users: map[string]string{testUser: testHash()}, Poll: 100 * time.Millisecond}
}

// server serves a Dashboard over a real loopback listener until t ends.
type server struct {
	*httptest.Server
	d *Dashboard
}

func serve(t testing.TB, c Config, in *dq.Inspector, opts ...Option) *server {
	t.Helper()
	d, err := New(c, in, opts...)
	require.NoError(t, err)
	s := httptest.NewServer(d)
	t.Cleanup(func() {
		_ = d.Close()
		s.Close()
	})
	return &server{Server: s, d: d}
}

// url is the full URL of a dashboard path.
func (s *server) url(path string) string { return s.URL + s.d.Prefix() + path }

// answer is one response, read whole.
type answer struct {
	code   int
	header http.Header
	body   string
}

// get fetches a dashboard path with the test account.
func (s *server) get(t testing.TB, path string) answer {
	t.Helper()
	return s.do(t, http.MethodGet, path, "", true, nil)
}

// do sends a request; auth adds the test account's credentials, hdr more
// headers.
func (s *server) do(t testing.TB, method, path, body string, auth bool, hdr map[string]string) answer {
	t.Helper()
	return doURL(t, method, s.url(path), body, auth, hdr)
}

func doURL(t testing.TB, method, url, body string, auth bool, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if auth {
		req.SetBasicAuth(testUser, testPass)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return answer{code: res.StatusCode, header: res.Header, body: string(b)}
}

// event is one server-sent event.
type event struct {
	name, data string
}

// stream is an open /api/events connection.
type stream struct {
	res    *http.Response
	events chan event
	cancel context.CancelFunc
}

// openEvents subscribes to url's event stream; it closes when t ends.
func openEvents(t testing.TB, url string, auth bool) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	if auth {
		req.SetBasicAuth(testUser, testPass)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	s := &stream{res: res, events: make(chan event, 256), cancel: cancel}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					select {
					case s.events <- ev:
					default:
					}
				}
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case strings.HasPrefix(line, ":"):
				select {
				case s.events <- event{name: "comment", data: line}:
				default:
				}
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	_ = s.res.Body.Close()
}

// await waits for an event for which ok holds.
func (s *stream) await(t testing.TB, timeout time.Duration, ok func(event) bool) event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, open := <-s.events:
			require.True(t, open, "the event stream ended")
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no matching event within %v", timeout)
		}
	}
}

// consumer runs a consumer of c's queue until the test ends.
func consumer(t testing.TB, c dq.DqConf, h dq.HandlerFunc) {
	t.Helper()
	cs, err := dq.NewConsumer(c, h)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cs.Start()
	}()
	t.Cleanup(func() {
		cs.Stop()
		<-done
	})
}

// seeded is a queue with copies in every state: a job done, dead letters,
// a job running (its copies reserved), then, with the queue paused, a job
// ready and one delayed.
type seeded struct {
	c                             dq.DqConf
	in                            *dq.Inspector
	done, running, ready, delayed string
	dead                          []string
}

// deadErr is the failure the seeded dead letters die of.
const deadErr = "seeded failure"

func seed(t *testing.T) *seeded {
	t.Helper()
	ctx := context.Background()
	s := &seeded{c: testConf(t)}
	s.in = inspector(t, s.c)
	release := make(chan struct{})
	consumer(t, s.c, func(ctx context.Context, body []byte) error {
		switch {
		case string(body) == "block":
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		case strings.HasPrefix(string(body), "die"):
			return fmt.Errorf("%s of %s: %w", deadErr, body, dq.ErrSkipRetry)
		}
		return nil
	})
	t.Cleanup(func() { close(release) }) // before the consumer stops
	var err error
	s.done, err = s.in.EnqueueIn(ctx, []byte("ok"), 0)
	require.NoError(t, err)
	for i := range 3 {
		id, err := s.in.EnqueueIn(ctx, []byte(fmt.Sprintf("die-%d", i)), 0)
		require.NoError(t, err)
		s.dead = append(s.dead, id)
	}
	s.running, err = s.in.EnqueueIn(ctx, []byte("block"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 15*time.Second, func() bool {
		return s.state(s.done) == dq.StateDone && s.state(s.running) == dq.StateRunning &&
			s.state(s.dead[0]) == dq.StateDead && s.state(s.dead[1]) == dq.StateDead && s.state(s.dead[2]) == dq.StateDead
	}, "the seeded jobs reach done, dead and running")
	require.NoError(t, s.in.Pause(ctx))
	// Once no reserve is waiting on the tube, a ready copy stays ready.
	dqtest.Eventually(t, 10*time.Second, func() bool {
		cs, err := s.in.Consumers(ctx)
		if err != nil || len(cs) != 1 || !cs[0].Paused {
			return false
		}
		st, err := s.in.Stats(ctx)
		return err == nil && st.Total.Waiting == 0
	}, "the consumer sees the pause and stops reserving")
	s.ready, err = s.in.EnqueueIn(ctx, []byte("ready"), 0)
	require.NoError(t, err)
	s.delayed, err = s.in.EnqueueIn(ctx, []byte("later"), time.Hour)
	require.NoError(t, err)
	// The registry's counts come with the consumer's entry, written every
	// few seconds: a loaded machine can take a few rounds.
	var last string
	if !dqtest.Await(30*time.Second, func() bool {
		st, err := s.in.Stats(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("ready %d, delayed %d, reserved %d, buried %d, dead letters %d, outcomes %v",
			st.Total.Ready, st.Total.Delayed, st.Total.Reserved, st.Total.Buried, st.DeadLetters, st.Outcomes)
		return st.Total.Ready > 0 && st.Total.Delayed > 0 && st.Total.Reserved > 0 &&
			st.Total.Buried > 0 && st.DeadLetters == 3 && st.Outcomes["dead"] == 3 && st.Outcomes["ok"] == 1
	}) {
		t.Fatalf("no copies ready, delayed, reserved and buried with the outcomes in the registry within 30s; last: %s", last)
	}
	return s
}

func (s *seeded) state(id string) dq.JobState {
	j, err := s.in.Job(context.Background(), id)
	if err != nil {
		return ""
	}
	return j.State
}
