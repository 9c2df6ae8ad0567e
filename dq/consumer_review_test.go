package dq

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
)

// A run that outlived its lease and returns nil after another run of its job
// made it a dead letter must not make its process take the job for done: the
// dead letter, kicked by an operator, runs again once.
func TestKickedDeadLetterRunsAgainAfterARunThatOutlivedItsLeaseReturnedNil(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.TTR = 3 * time.Second
	c.Timeout = time.Second // the heartbeat stops at Timeout + 1 s: the lease lapses
	var calls atomic.Int32
	late := make(chan struct{})
	startConsumer(t, c, WithHandle(func(ctx context.Context, body []byte) error {
		switch calls.Add(1) {
		case 1:
			<-late // ignores its ctx, then reports success
			return nil
		case 2:
			return fmt.Errorf("bad input: %w", ErrSkipRetry)
		default:
			return nil
		}
	}))
	defer func() {
		select {
		case <-late:
		default:
			close(late)
		}
	}()
	id, err := newTestProducer(t, c).Delay([]byte("outlives"), 0)
	require.NoError(t, err)

	// Run 2 took the lapsed lease over and buried the job while run 1 is
	// still going. Run 1's copy lapses with its heartbeat and is deleted as a
	// copy of a dead job, so whether it is still reserved at this point is a
	// matter of timing, not part of the condition.
	dqtest.Eventually(t, 20*time.Second, func() bool {
		_, _, _, b := countJobs(t, c)
		return calls.Load() == 2 && b == 1 && recordOf(t, c, id)["bid"] != ""
	}, "the job dead, its first run still going")
	close(late)
	awaitNoCopies(t, c, 10*time.Second, "the first run's copy deleted")

	kicked := 0
	for _, b := range c.Beanstalks {
		if countTube(t, b.Endpoint, b.Tube).Buried == 0 {
			continue
		}
		n, err := (&beanstalk.Tube{Conn: dialNode(t, b.Endpoint), Name: b.Tube}).Kick(1)
		require.NoError(t, err)
		kicked += n
	}
	require.Equal(t, 1, kicked)
	dqtest.Eventually(t, 10*time.Second, func() bool { return calls.Load() == 3 },
		"the kicked dead letter runs again (it was deleted as a duplicate of a job taken for done)")
}

// A handler that ends its goroutine with runtime.Goexit (t.FailNow in a
// handler, a helper that calls it) has not returned a result; the consumer
// must still free its worker and go on with other jobs.
func TestConsumerKeepsConsumingAfterAHandlerGoexits(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 1
	var calls atomic.Int32
	var others atomic.Int32
	startConsumer(t, c, WithHandle(func(ctx context.Context, body []byte) error {
		if string(body) == "goexit" && calls.Add(1) == 1 {
			runtime.Goexit()
		}
		if string(body) == "other" {
			others.Add(1)
		}
		return nil
	}))
	p := newTestProducer(t, c)
	_, err := p.Delay([]byte("goexit"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 5*time.Second, func() bool { return calls.Load() == 1 }, "the handler ran")
	_, err = p.Delay([]byte("other"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return others.Load() == 1 },
		"another job runs (the worker of the handler that called Goexit is never freed)")
	dqtest.Eventually(t, 10*time.Second, func() bool { return calls.Load() == 2 },
		"the job whose handler called Goexit is retried, as after a failure")
}

// A WithID enqueue whose confirm did not reach Redis returns the ID with nil
// (its copies are written); a later enqueue of the same ID that takes the
// lapsed reservation over and misses its quorum must not make the first
// enqueue's copies be deleted unrun.
func TestWithIDJobNotLostWhenItsConfirmFailedAndALaterEnqueueOfItsIDMissedItsQuorum(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	st := testStore(t, c)
	ctx := context.Background()
	id := "order-" + dqtest.Name(t)
	now, err := st.Now(ctx)
	require.NoError(t, err)
	due := now + 1500

	// Writer w1: reserved, put its quorum and more, then its confirm was
	// lost; its caller got (id, nil).
	rep, err := st.Reserve(ctx, c.claimTube(), id, "w1", due, 50)
	require.NoError(t, err)
	require.Equal(t, claim.Fresh, rep.Kind)
	for k, b := range c.Beanstalks {
		e := envelope.Envelope{ID: id, DueMs: due, Slot: uint8(k), Count: uint8(len(c.Beanstalks)), TTR: 60,
			Headers: []envelope.Header{{Key: envelope.WriterHeader, Value: "w1"}}, Body: []byte("w1")}
		body, err := envelope.Encode(&e, nil)
		require.NoError(t, err)
		putRaw(t, b, body)
	}
	awaitWindowPassed(t, c, st, id)

	// A retried request enqueues the ID again while the nodes are out of
	// its reach: it takes the reservation over and misses its quorum.
	down := c
	down.Beanstalks = nil
	for range c.Beanstalks {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		down.Beanstalks = append(down.Beanstalks, Beanstalk{Endpoint: l.Addr().String(), Tube: c.Beanstalks[0].Tube})
		require.NoError(t, l.Close())
	}
	_, err = newTestProducer(t, down).DelayCtx(ctx, []byte("w2"), time.Second, WithID(id))
	require.ErrorIs(t, err, ErrQuorum)

	var runs atomic.Int32
	startConsumer(t, c, WithHandle(func(ctx context.Context, body []byte) error {
		runs.Add(1)
		return nil
	}))
	dqtest.Eventually(t, 10*time.Second, func() bool { return runs.Load() == 1 },
		"the job enqueued with (id, nil) runs (its copies are deleted: the abort of the later writer revoked the ID)")
}

// A hung handler stops being heartbeated at Timeout + 1 s: its lease lapses
// and, with the copy's TTR, the job is retried elsewhere. A job with one copy
// (a single node) must be too: its copy may not be kept reserved by touches
// sent for the hung run.
func TestHungHandlersOnlyCopyIsRetriedAfterItsLeaseLapses(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Beanstalks = c.Beanstalks[:1]
	c.Replicas, c.MinWrites = 1, 1
	c.TTR = 3 * time.Second
	c.Timeout = time.Second
	var runs atomic.Int32
	hung := make(chan struct{})
	h := WithHandle(func(ctx context.Context, body []byte) error {
		if runs.Add(1) == 1 {
			<-hung // ignores its ctx
		}
		return nil
	})
	startConsumer(t, c, h)
	startConsumer(t, c, h)
	t.Cleanup(func() { close(hung) }) // before the consumers stop
	_, err := newTestProducer(t, c).Delay([]byte("hangs"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 5*time.Second, func() bool { return runs.Load() == 1 }, "the handler started")
	dqtest.Eventually(t, 12*time.Second, func() bool { return runs.Load() == 2 },
		"the job is retried once its lease lapsed (its copy stays reserved: the reserve loop touches it on every DEADLINE_SOON)")
}

// The consumer and producer end to end on a Redis Cluster (records spread
// over its masters; claims, finishes and gones pipelined): every job once,
// never early, every copy deleted.
func TestConsumerRunsEveryJobOnceNeverEarlyOnARedisCluster(t *testing.T) {
	t.Parallel()
	cluster := dqtest.NewRedisCluster(t)
	c := sharedConf(t)
	c.Redis = redis.RedisConf{Host: cluster.Hosts(), Type: redis.ClusterType}
	c.Workers = 32
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)
	const jobs = 300
	ids := make([]string, jobs)
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < jobs; i += 8 {
				id, err := p.Delay([]byte(fmt.Sprintf("job %d", i)), time.Duration(i%1500)*time.Millisecond)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	dqtest.Eventually(t, 30*time.Second, func() bool { return l.allDone(ids) }, "all %d jobs done", jobs)
	awaitNoCopies(t, c, 15*time.Second, "every copy deleted")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.early, "handlers started before their due time")
	for _, id := range ids {
		require.Equal(t, 1, l.starts[id], "job %s started %d times", id, l.starts[id])
	}
}

// Turning signing on is a config change between releases: the jobs already
// queued are unsigned. No job lost: with AcceptUnsigned, set while they
// drain, they run once the consumers have keys, beside the signed jobs of
// the new release.
func TestJobsQueuedBeforeSigningKeysWereSetRunAfterTheConsumersGetKeys(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	id, err := newTestProducer(t, c).Delay([]byte("queued before the keys"), 0)
	require.NoError(t, err)

	signed := c
	signed.SigningKeys = []string{"release-2-key"}
	signed.AcceptUnsigned = true
	l := newLedger()
	startConsumer(t, signed, l.handler(nil))
	after, err := newTestProducer(t, signed).Delay([]byte("signed"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(id) == 1 && l.doneCount(after) == 1 },
		"a job queued before the release that set SigningKeys runs (it is buried as malformed), and a signed one")
}

// Without AcceptUnsigned, a consumer with SigningKeys buries an unsigned
// envelope as malformed, every copy of it, and never runs it.
func TestUnsignedJobsAreBuriedUnrunByConsumersWithKeysWithoutAcceptUnsigned(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	_, err := newTestProducer(t, c).Delay([]byte("unsigned"), 0)
	require.NoError(t, err)

	signed := c
	signed.SigningKeys = []string{"release-2-key"}
	var runs atomic.Int32
	startConsumer(t, signed, WithHandle(func(ctx context.Context, body []byte) error {
		runs.Add(1)
		return nil
	}))
	dqtest.Eventually(t, 10*time.Second, func() bool {
		r, d, rs, b := countJobs(t, c)
		return r+d+rs == 0 && b == min(len(c.Beanstalks), c.Replicas)
	}, "every copy of the unsigned job buried")
	require.Zero(t, runs.Load(), "an unsigned job ran on a consumer with SigningKeys and no AcceptUnsigned")
}

// Stop returns within ShutdownTimeout + 1.5 s with Redis frozen (SIGSTOP:
// calls hang rather than fail) under handlers that ignore their ctx and
// copies held for their due time.
func TestStopReturnsInTimeWithRedisFrozenAndHandlersIgnoringTheirCtx(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	c.ShutdownTimeout = 500 * time.Millisecond
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var running atomic.Int32
	cs, err := NewConsumer(c, WithHandle(func(ctx context.Context, body []byte) error {
		running.Add(1)
		<-release // ignores its ctx
		return nil
	}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() { cs.Stop(); <-done })
	p := newTestProducer(t, c)
	for range 4 {
		_, err = p.Delay([]byte("x"), 0)
		require.NoError(t, err)
	}
	for range 4 {
		_, err = p.Delay([]byte("later"), 700*time.Millisecond)
		require.NoError(t, err)
	}
	dqtest.Eventually(t, 5*time.Second, func() bool { return running.Load() == 4 }, "four handlers running")
	require.NoError(t, env.Redis.Pause())
	t.Cleanup(func() { _ = env.Redis.Resume() })
	start := time.Now()
	cs.Stop()
	took := time.Since(start)
	<-done
	require.Less(t, took, stopBound(c), "Stop took %v with Redis frozen", took)
}
