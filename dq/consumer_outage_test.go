package dq

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// A handler that succeeded while Redis was away for longer than the lease is
// reported done when Redis is back, not handed back to run again.
func TestConsumerReportsASuccessAfterARedisOutageLongerThanTheLease(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{RedisOpts: []dqtest.Option{dqtest.WithAOF()}})
	c := testConf(t, env)
	c.TTR = 3 * time.Second
	killed := make(chan struct{})
	var once sync.Once
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		once.Do(func() {
			env.Redis.Kill()
			close(killed)
		})
		return nil
	}))
	id, err := newTestProducer(t, c).Delay([]byte("x"), 0)
	require.NoError(t, err)
	<-killed
	outage := time.NewTimer(2 * c.TTR) // the outage under test outlasts the lease
	<-outage.C
	require.NoError(t, env.Redis.Restart())
	awaitNoCopies(t, c, 15*time.Second, "every copy deleted after Redis is back")
	// Done, or already collected once the gone calls of every copy came in.
	require.Contains(t, []string{"D", ""}, rawRecord(t, c, id)["st"])
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Equal(t, 1, l.starts[id], "the job ran again after its success was reported late")
}

// rawRecord reads a job's record with a client of its own, out of reach of
// go-zero's breaker, which a test's outage leaves open for a while.
func rawRecord(t testing.TB, c DqConf, id string) map[string]string {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: c.Redis.Host})
	defer rc.Close()
	m, err := rc.HGetAll(context.Background(), c.KeyPrefix+":"+c.claimTube()+":"+id).Result()
	require.NoError(t, err)
	return m
}

// A consumer whose Redis is not up yet (pods start before Redis) constructs,
// waits paused, and consumes once Redis answers.
func TestConsumerStartsBeforeRedisAndWaitsForIt(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	env.Redis.Kill()
	l := newLedger()
	bad := c
	bad.Workers = -1
	_, err := NewConsumer(bad, l.handler(nil))
	require.ErrorIs(t, err, ErrBadConfig, "a bad config still fails at once")
	start := time.Now()
	cs, err := NewConsumer(c, l.handler(nil))
	require.NoError(t, err, "NewConsumer with Redis down")
	require.Less(t, time.Since(start), 2*time.Second, "NewConsumer waits for no Redis")
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() { cs.Stop(); <-done })
	require.NoError(t, env.Redis.Restart())
	id, err := newTestProducer(t, c).Delay([]byte("x"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(id) == 1 }, "the job runs once Redis is up")
}

// Once Redis answers again after an outage, consumption resumes within about
// a second: go-zero's breaker, open from the outage's failures, does not hold
// it back.
func TestConsumerResumesPromptlyWhenRedisAnswersAgain(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{RedisOpts: []dqtest.Option{dqtest.WithAOF()}})
	c := testConf(t, env)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)
	first, err := p.Delay([]byte("before"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(first) == 1 }, "a job done before the outage")

	env.Redis.Kill()
	var ids []string
	for range 20 { // their claims fail while Redis is away
		id, err := p.Delay([]byte("during"), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	outage := time.NewTimer(8 * time.Second)
	<-outage.C
	require.NoError(t, env.Redis.Restart())
	back := time.Now()
	dqtest.Eventually(t, 15*time.Second, func() bool {
		for _, id := range ids {
			if l.doneCount(id) > 0 {
				return true
			}
		}
		return false
	}, "a job runs after the outage")
	took := time.Since(back)
	dqtest.Eventually(t, 15*time.Second, func() bool { return l.allDone(ids) }, "the jobs run after the outage")
	t.Logf("first job done %v, all %v after Redis answered", took, time.Since(back))
	// About a second: go-redis's pool under go-zero's client, after its dials
	// failed, dials again once a second; the breaker used to add 6-10 s.
	require.Less(t, took, 2*time.Second, "consumption resumed %v after Redis answered", took)
}
