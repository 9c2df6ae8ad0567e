package dqx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// childEnv, when set, makes the test binary run one scheduler (configured by
// the variable's JSON) until it is killed, instead of the tests.
const childEnv = "DQX_TEST_SCHEDULER"

type childConfig struct {
	Dq   dq.DqConf
	Cron CronConf
}

// TestMain runs the package's tests against real servers and stops the shared
// ones at the end; as a child process, it runs a scheduler instead.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	logx.SetLevel(logx.ErrorLevel)
	dqtest.Main(m)
}

func runChild(spec string) int {
	logx.Disable()
	var c childConfig
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := NewScheduler(c.Dq, c.Cron)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s.Start() // until the test kills the process
	return 0
}

// startChild starts a scheduler in a process of its own, killed when the test
// ends if it is still running.
func startChild(t *testing.T, c dq.DqConf, cc CronConf) *exec.Cmd {
	t.Helper()
	spec, err := json.Marshal(childConfig{Dq: c, Cron: cc})
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// testConf returns a DqConf for e's servers with a tube and a key prefix of
// the test's own, so tests sharing servers stay out of each other's way.
func testConf(t testing.TB, e *dqtest.Env) dq.DqConf {
	t.Helper()
	name := dqtest.Name(t)
	c := dq.DqConf{
		Redis:       redis.RedisConf{Host: e.Redis.Addr(), Type: redis.NodeType},
		KeyPrefix:   name,
		DialTimeout: 300 * time.Millisecond,
		IOTimeout:   500 * time.Millisecond,
	}
	for _, ep := range e.Endpoints() {
		c.Beanstalks = append(c.Beanstalks, dq.Beanstalk{Endpoint: ep, Tube: name})
	}
	return c
}

func sharedConf(t testing.TB) dq.DqConf {
	t.Helper()
	return testConf(t, dqtest.Shared(t))
}

// startConsumer runs a consumer of c's queue until the test ends.
func startConsumer(t *testing.T, c dq.DqConf, h dq.ConsumeHandler) {
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

// runningScheduler is a Scheduler started in a goroutine.
type runningScheduler struct {
	*Scheduler
	done chan struct{}
}

// stop stops the scheduler and waits for Start to return.
func (r *runningScheduler) stop() {
	r.Stop()
	<-r.done
}

// startScheduler starts a scheduler, stopped when the test ends if not
// before.
func startScheduler(t *testing.T, c dq.DqConf, cc CronConf, opts ...SchedulerOption) *runningScheduler {
	t.Helper()
	s, err := NewScheduler(c, cc, opts...)
	require.NoError(t, err)
	r := &runningScheduler{Scheduler: s, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		s.Start()
	}()
	t.Cleanup(r.stop)
	return r
}

// fireRun is one start of a handler for a cron fire.
type fireRun struct {
	id      string
	entry   string
	body    string
	at      time.Time // the fire's scheduled time
	due     time.Time // the job's due time
	started time.Time
}

// fireLog records the fires a consumer ran.
type fireLog struct {
	mu   sync.Mutex
	runs []fireRun
}

func (l *fireLog) handler() dq.ConsumeHandler {
	return dq.WithHandle(func(ctx context.Context, body []byte) error {
		now := time.Now()
		job, _ := dq.JobFromContext(ctx)
		fire, ok := FireFromContext(ctx)
		if !ok {
			return fmt.Errorf("job %s is not a cron fire: %w", job.ID, dq.ErrSkipRetry)
		}
		l.mu.Lock()
		l.runs = append(l.runs, fireRun{id: job.ID, entry: fire.Entry, body: string(body),
			at: fire.At, due: job.DueAt, started: now})
		l.mu.Unlock()
		return nil
	})
}

// snapshot returns the runs so far, ordered by fire time.
func (l *fireLog) snapshot() []fireRun {
	l.mu.Lock()
	runs := slices.Clone(l.runs)
	l.mu.Unlock()
	slices.SortStableFunc(runs, func(a, b fireRun) int { return a.at.Compare(b.at) })
	return runs
}

// ran reports whether a fire of entry at or after t has run.
func (l *fireLog) ran(entry string, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.runs {
		if r.entry == entry && !r.at.Before(t) {
			return true
		}
	}
	return false
}

// count returns how many runs of entry were for the fire at t.
func count(runs []fireRun, entry string, t time.Time) int {
	n := 0
	for _, r := range runs {
		if r.entry == entry && r.at.Equal(t) {
			n++
		}
	}
	return n
}

// requireNoFireTwice fails if any (entry, fire time) ran more than once,
// whatever the version of the entry that wrote it.
func requireNoFireTwice(t *testing.T, runs []fireRun) {
	t.Helper()
	seen := make(map[string]fireRun, len(runs))
	for _, r := range runs {
		key := r.entry + "@" + r.at.UTC().Format(time.RFC3339Nano)
		if prev, dup := seen[key]; dup {
			t.Fatalf("fire %s ran twice: as %s (%q) and as %s (%q)", key, prev.id, prev.body, r.id, r.body)
		}
		seen[key] = r
	}
}

// requireEverySecondOnce fails unless entry ran exactly once for each whole
// second in [from, to).
func requireEverySecondOnce(t *testing.T, runs []fireRun, entry string, from, to time.Time) {
	t.Helper()
	for at := from; at.Before(to); at = at.Add(time.Second) {
		if n := count(runs, entry, at); n != 1 {
			for _, r := range runs {
				t.Logf("ran %s %s at %v (due %v) started %v", r.entry, r.body, r.at.UTC(), r.due.UTC(), r.started.UTC())
			}
			t.Fatalf("%d runs of %s for the fire at %v, want 1", n, entry, at.UTC())
		}
	}
}

// awaitFirstFire waits for the first run of entry for a fire after since and
// returns its fire time.
func awaitFirstFire(t *testing.T, l *fireLog, entry string, since time.Time) time.Time {
	t.Helper()
	var first time.Time
	dqtest.Eventually(t, 10*time.Second, func() bool {
		for _, r := range l.snapshot() {
			if r.entry == entry && r.at.After(since) {
				first = r.at
				return true
			}
		}
		return false
	}, "a first fire of %s", entry)
	return first
}

// call is one enqueue a fakeProducer saw.
type call struct {
	body  string
	at    time.Time     // AtCtx
	delay time.Duration // DelayCtx
	isAt  bool
}

// fakeProducer records enqueues instead of writing them, for tests whose
// clock is fixed far from now. Revokes succeed.
type fakeProducer struct {
	mu      sync.Mutex
	calls   []call
	revokes []string
}

func (p *fakeProducer) At(body []byte, at time.Time) (string, error) {
	return p.AtCtx(context.Background(), body, at)
}

func (p *fakeProducer) Delay(body []byte, d time.Duration) (string, error) {
	return p.DelayCtx(context.Background(), body, d)
}

func (p *fakeProducer) Revoke(id string) error { return p.RevokeCtx(context.Background(), id) }

func (p *fakeProducer) Close() error { return nil }

func (p *fakeProducer) AtCtx(_ context.Context, body []byte, at time.Time, _ ...dq.JobOption) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call{body: string(body), at: at.UTC(), isAt: true})
	return "id", nil
}

func (p *fakeProducer) DelayCtx(_ context.Context, body []byte, d time.Duration, _ ...dq.JobOption) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call{body: string(body), delay: d})
	return "id", nil
}

func (p *fakeProducer) RevokeCtx(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revokes = append(p.revokes, id)
	return nil
}

// take returns and forgets the calls so far.
func (p *fakeProducer) take() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	calls := p.calls
	p.calls = nil
	return calls
}

// ats returns the fire times of the AtCtx calls for body, in order.
func ats(calls []call, body string) []time.Time {
	var out []time.Time
	for _, c := range calls {
		if c.isAt && c.body == body {
			out = append(out, c.at)
		}
	}
	return out
}

// fixedClock is a Clock a test sets.
type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fixedClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// stateFires returns the fire IDs a scheduler's state holds.
func stateFires(t *testing.T, c dq.DqConf, s *Scheduler) []string {
	t.Helper()
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	ids, err := rds.Zrange(s.state.keys[1], 0, -1)
	require.NoError(t, err)
	return ids
}

// stateLast returns the latest fire the state holds for entry.
func stateLast(t *testing.T, c dq.DqConf, s *Scheduler, entry string) time.Time {
	t.Helper()
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	v, err := rds.Hget(s.state.keys[0], "l:"+entry)
	require.NoError(t, err)
	ms, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err)
	return time.UnixMilli(ms)
}

// ranBody reports whether a fire of entry with the given body has run.
func (l *fireLog) ranBody(entry, body string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.runs {
		if r.entry == entry && r.body == body {
			return true
		}
	}
	return false
}

// fireIDAt returns the ID among ids of the fire of the entry tagged tag at
// at, or "".
func fireIDAt(ids []string, tag string, at time.Time) string {
	suffix := "-" + strconv.FormatInt(at.UnixMilli(), 10)
	for _, id := range ids {
		if fireTag(id) == tag && strings.HasSuffix(id, suffix) {
			return id
		}
	}
	return ""
}
