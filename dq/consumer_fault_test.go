package dq

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// The consumer subprocess of TestConsumerRequeuesJobsOfAKilledProcess: the
// test binary runs itself with this variable set to a JSON DqConf.
const subprocessEnv = "ZERODQ_TEST_CONSUMER_CONF"

// TestConsumerSubprocess is not a test of its own: it is the body of the
// consumer process that another test starts and kills.
func TestConsumerSubprocess(t *testing.T) {
	raw := os.Getenv(subprocessEnv)
	if raw == "" {
		return // run directly: nothing to do
	}
	var c DqConf
	require.NoError(t, json.Unmarshal([]byte(raw), &c))
	rc := goredis.NewClient(&goredis.Options{Addr: c.Redis.Host})
	ledger := c.KeyPrefix + "-ledger"
	cs, err := NewConsumer(c, WithHandle(func(ctx context.Context, body []byte) error {
		j, _ := JobFromContext(ctx)
		rc.HIncrBy(context.Background(), ledger+":starts", j.ID, 1)
		t := time.NewTimer(200 * time.Millisecond) // the work a kill interrupts
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		rc.HIncrBy(context.Background(), ledger+":done", j.ID, 1)
		return nil
	}))
	require.NoError(t, err)
	cs.Start() // until the parent kills the process
}

// redisLedger reads what subprocess handlers recorded.
type redisLedger struct {
	rc  *goredis.Client
	key string
}

func (l redisLedger) counts(t *testing.T, which string) map[string]int {
	t.Helper()
	m, err := l.rc.HGetAll(context.Background(), l.key+":"+which).Result()
	require.NoError(t, err)
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k], _ = strconv.Atoi(v)
	}
	return out
}

func startSubprocessConsumer(t *testing.T, c DqConf) *exec.Cmd {
	t.Helper()
	raw, err := json.Marshal(c)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestConsumerSubprocess$", "-test.count=1")
	cmd.Env = append(os.Environ(), subprocessEnv+"="+string(raw))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestConsumerRequeuesJobsOfAKilledProcess(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.TTR = 3 * time.Second
	c.Workers = 8
	rc := goredis.NewClient(&goredis.Options{Addr: c.Redis.Host})
	defer rc.Close()
	led := redisLedger{rc: rc, key: c.KeyPrefix + "-ledger"}

	victim := startSubprocessConsumer(t, c)
	p := newTestProducer(t, c)
	ids := make([]string, 100)
	var err error
	for i := range ids {
		ids[i], err = p.Delay([]byte("work"), time.Duration(i%10)*100*time.Millisecond)
		require.NoError(t, err)
	}
	dqtest.Eventually(t, 20*time.Second, func() bool {
		return len(led.counts(t, "done")) >= 20
	}, "the victim completes some jobs")
	require.NoError(t, victim.Process.Signal(syscall.SIGKILL))
	_ = victim.Wait()
	killedAt := time.Now()
	// Interrupted: every job the victim held a claim on when it died, whether
	// or not its handler had got to the end (the claim was not finished).
	var interrupted []string
	for id := range led.counts(t, "starts") {
		st, err := rc.HGet(context.Background(), c.KeyPrefix+":"+c.claimTube()+":"+id, "st").Result()
		if err == nil && st == "R" {
			interrupted = append(interrupted, id)
		}
	}

	startSubprocessConsumer(t, c)
	dqtest.Eventually(t, c.TTR+5*time.Second, func() bool {
		d := led.counts(t, "done")
		for _, id := range interrupted {
			if d[id] == 0 {
				return false
			}
		}
		return true
	}, "the %d interrupted jobs complete within TTR + 5 s", len(interrupted))
	t.Logf("%d jobs interrupted by the kill, all done %v after it", len(interrupted), time.Since(killedAt))
	dqtest.Eventually(t, 30*time.Second, func() bool {
		d := led.counts(t, "done")
		for _, id := range ids {
			if d[id] == 0 {
				return false
			}
		}
		return true
	}, "every job completes")
	wasInterrupted := map[string]bool{}
	for _, id := range interrupted {
		wasInterrupted[id] = true
	}
	for id, n := range led.counts(t, "starts") {
		if !wasInterrupted[id] {
			require.Equal(t, 1, n, "job %s ran %d times without being interrupted", id, n)
		}
	}
	for id, n := range led.counts(t, "done") {
		if !wasInterrupted[id] {
			require.Equal(t, 1, n, "job %s completed %d times", id, n)
		}
	}
}

func TestConsumerPausesWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{RedisOpts: []dqtest.Option{dqtest.WithAOF()}})
	c := testConf(t, env)
	var mu sync.Mutex
	var downSince time.Time // zero while Redis is up
	var startsWhileDown int
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		mu.Lock()
		// A claim Redis granted just before it died may have its reply read
		// a moment after: allow 200 ms for replies already on the way.
		if !downSince.IsZero() && time.Since(downSince) > 200*time.Millisecond {
			startsWhileDown++
		}
		mu.Unlock()
		return nil
	}))
	p := newTestProducer(t, c)
	ids := make([]string, 300)
	var err error
	for i := range ids {
		ids[i], err = p.Delay([]byte("x"), time.Duration(i*20)*time.Millisecond) // due over 6 s
		require.NoError(t, err)
	}
	dqtest.Eventually(t, 10*time.Second, func() bool { return len(doneSet(l)) >= 30 }, "some done before the outage")
	env.Redis.Kill()
	mu.Lock()
	downSince = time.Now()
	mu.Unlock()
	downFor := time.NewTimer(5 * time.Second)
	<-downFor.C // the outage itself is what is under test: it lasts 5 s
	mu.Lock()
	downSince = time.Time{}
	mu.Unlock()
	require.NoError(t, env.Redis.Restart())
	dqtest.Eventually(t, 30*time.Second, func() bool { return l.allDone(ids) }, "every job done after Redis is back")
	mu.Lock()
	require.Equal(t, 0, startsWhileDown, "handlers started while Redis was down")
	mu.Unlock()
	awaitNoCopies(t, c, 15*time.Second, "every copy deleted")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		require.Equal(t, 1, l.done[id], "job %s completed %d times", id, l.done[id])
	}
}

func doneSet(l *ledger) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]int, len(l.done))
	for k, v := range l.done {
		m[k] = v
	}
	return m
}

func TestConsumerLosesNothingWhenANodeDiesAndComesBackFromItsBinlog(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{NodeOpts: []dqtest.Option{dqtest.WithBinlog()}})
	c := testConf(t, env)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)
	ids := make([]string, 300)
	var err error
	for i := range ids {
		ids[i], err = p.Delay([]byte("x"), time.Duration(i*10)*time.Millisecond)
		require.NoError(t, err)
	}
	dqtest.Eventually(t, 10*time.Second, func() bool { return len(doneSet(l)) >= 50 }, "some done")
	env.Nodes[0].Kill()
	// Keep producing while the node is down.
	for i := 0; i < 50; i++ {
		id, err := p.Delay([]byte("y"), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.allDone(ids) }, "all done with a node down")
	require.NoError(t, env.Nodes[0].Restart())
	// The restarted node brings back copies of jobs that already ran: they
	// must be deleted, not run.
	awaitNoCopies(t, c, 30*time.Second, "copies of the restarted node cleared")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		require.Equal(t, 1, l.starts[id], "job %s ran %d times", id, l.starts[id])
	}
}

func TestConsumerLeavesFewRedisKeysBehind(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 64
	c.History = 0 // no summaries: a record goes with its job's last copy
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)
	const jobs = 10000
	ids := make([]string, jobs)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < jobs; i += 16 {
				id, err := p.Delay([]byte("gc"), 0)
				if err != nil {
					panic(err)
				}
				ids[i] = id
			}
		}(w)
	}
	wg.Wait()
	dqtest.Eventually(t, 120*time.Second, func() bool { return l.allDone(ids) }, "all done")
	awaitNoCopies(t, c, 20*time.Second, "every copy deleted")
	rc := goredis.NewClient(&goredis.Options{Addr: c.Redis.Host})
	defer rc.Close()
	countKeys := func() int {
		var keys int
		iter := rc.Scan(context.Background(), 0, c.KeyPrefix+":*", 1000).Iterator()
		for iter.Next(context.Background()) {
			keys++
		}
		require.NoError(t, iter.Err())
		return keys
	}
	// The deletes are recorded in batches a moment after them (in flight).
	keys := countKeys()
	dqtest.Eventually(t, 5*time.Second, func() bool {
		keys = countKeys()
		return keys <= jobs/100
	}, "at most %d zerodq keys left after %d jobs", jobs/100, jobs)
	t.Logf("%d keys left after %d jobs", keys, jobs)
}
