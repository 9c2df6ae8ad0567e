package dq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// ledger records what handlers did, for tests to assert on.
type ledger struct {
	mu       sync.Mutex
	starts   map[string]int
	done     map[string]int
	attempts map[string][]int
	early    []string
	maxLate  time.Duration
	running  atomic.Int32
}

func newLedger() *ledger {
	return &ledger{starts: map[string]int{}, done: map[string]int{}, attempts: map[string][]int{}}
}

// start records a handler start and checks it is not early.
func (l *ledger) start(ctx context.Context) Job {
	now := time.Now()
	j, ok := JobFromContext(ctx)
	if !ok {
		panic("handler ctx without job")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts[j.ID]++
	l.attempts[j.ID] = append(l.attempts[j.ID], j.Attempt)
	if late := now.Sub(j.DueAt); late < 0 {
		l.early = append(l.early, fmt.Sprintf("%s early by %v", j.ID, -late))
	} else if late > l.maxLate {
		l.maxLate = late
	}
	return j
}

func (l *ledger) finish(id string) {
	l.mu.Lock()
	l.done[id]++
	l.mu.Unlock()
}

func (l *ledger) doneCount(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done[id]
}

func (l *ledger) allDone(ids []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if l.done[id] == 0 {
			return false
		}
	}
	return true
}

// handler returns a handler that records starts and completions.
func (l *ledger) handler(work func(ctx context.Context, j Job) error) ConsumeHandler {
	return WithHandle(func(ctx context.Context, body []byte) error {
		j := l.start(ctx)
		l.running.Add(1)
		defer l.running.Add(-1)
		if work != nil {
			if err := work(ctx, j); err != nil {
				return err
			}
		}
		l.finish(j.ID)
		return nil
	})
}

// startConsumer starts a consumer and stops it when the test ends.
func startConsumer(t *testing.T, c DqConf, h ConsumeHandler, opts ...ConsumerOption) Consumer {
	t.Helper()
	cs, err := NewConsumer(c, h, opts...)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() {
		cs.Stop()
		<-done
	})
	return cs
}

func newTestProducer(t *testing.T, c DqConf) Producer {
	t.Helper()
	p, err := NewProducer(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// countJobs counts the copies left in the conf's tube on every node.
func countJobs(t *testing.T, c DqConf) (ready, delayed, reserved, buried int) {
	t.Helper()
	for _, b := range c.Beanstalks {
		conn, err := beanstalk.DialTimeout("tcp", b.Endpoint, time.Second)
		require.NoError(t, err)
		st, err := (&beanstalk.Tube{Conn: conn, Name: b.Tube}).Stats()
		_ = conn.Close()
		if errors.Is(err, beanstalk.ErrNotFound) {
			continue // the tube is gone: nothing in it
		}
		require.NoError(t, err)
		var r, d, rs, bu int
		fmt.Sscan(st["current-jobs-ready"], &r)
		fmt.Sscan(st["current-jobs-delayed"], &d)
		fmt.Sscan(st["current-jobs-reserved"], &rs)
		fmt.Sscan(st["current-jobs-buried"], &bu)
		ready, delayed, reserved, buried = ready+r, delayed+d, reserved+rs, buried+bu
	}
	return
}

// awaitNoCopies waits until no copy of c's jobs is ready, delayed or
// reserved on any node (buried ones stay).
func awaitNoCopies(t *testing.T, c DqConf, timeout time.Duration, what string) {
	t.Helper()
	dqtest.Eventually(t, timeout, func() bool {
		r, d, rs, _ := countJobs(t, c)
		return r+d+rs == 0
	}, "%s", what)
}

func TestConsumerRunsEveryJobOnceAcrossTwoConsumersNeverEarly(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 32
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)

	const jobs = 5000
	ids := make([]string, jobs)
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < jobs; i += 16 {
				// Due times spread over the next 2.5 s so that copies are
				// held and fired on time, not only run when ready.
				id, err := p.Delay([]byte(fmt.Sprintf("job %d", i)), time.Duration(i%2500)*time.Millisecond)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	dqtest.Eventually(t, 60*time.Second, func() bool { return l.allDone(ids) }, "all %d jobs done", jobs)
	// Let any duplicate copy surface before counting.
	awaitNoCopies(t, c, 15*time.Second, "every copy deleted")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.early, "handlers started before their due time")
	for _, id := range ids {
		require.Equal(t, 1, l.starts[id], "job %s started %d times", id, l.starts[id])
	}
	t.Logf("max lateness %v", l.maxLate)
}

func TestConsumerRetriesWithAttemptsThenSucceeds(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.RetryBackoff = 50 * time.Millisecond
	c.MaxRetryBackoff = 100 * time.Millisecond
	l := newLedger()
	var failures atomic.Int32
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		if failures.Add(1) <= 2 {
			return errors.New("not yet")
		}
		return nil
	}))
	id, err := newTestProducer(t, c).Delay([]byte("retry me"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(id) == 1 }, "job done")
	l.mu.Lock()
	require.Equal(t, []int{1, 2, 3}, l.attempts[id])
	l.mu.Unlock()
}

func TestConsumerCountsNoAttemptForAClaimThatFoundNoWorker(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 1
	l := newLedger()
	release := make(chan struct{})
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		if j.Headers["role"] == "blocker" {
			<-release
		}
		return nil
	}))
	p := newTestProducer(t, c)
	blocker, err := p.DelayCtx(context.Background(), []byte("blocker"), 0, WithHeader("role", "blocker"))
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.running.Load() == 1 }, "the one worker is busy")
	waiting, err := p.Delay([]byte("waits for the worker"), 0)
	require.NoError(t, err)
	// Its claims find no worker for over a second each time and are handed
	// back; none of them is a start.
	rc := goredis.NewClient(&goredis.Options{Addr: c.Redis.Host})
	defer rc.Close()
	dqtest.Eventually(t, 10*time.Second, func() bool {
		nb, err := rc.HGet(context.Background(), c.KeyPrefix+":"+c.claimTube()+":"+waiting, "nb").Result()
		return err == nil && nb != ""
	}, "a claim handed back (nb set)")
	close(release)
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(waiting) == 1 }, "job done")
	require.Equal(t, 1, l.doneCount(blocker))
	l.mu.Lock()
	require.Equal(t, []int{1}, l.attempts[waiting], "the handed-back claims counted no attempt")
	l.mu.Unlock()
}

func TestConsumerBuriesAJobThatAlwaysFails(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.MaxRetries = 2
	c.RetryBackoff = 20 * time.Millisecond
	c.MaxRetryBackoff = 50 * time.Millisecond
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error { return errors.New("always") }))
	id, err := newTestProducer(t, c).Delay([]byte("doomed"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 30*time.Second, func() bool {
		r, d, rs, b := countJobs(t, c)
		return b == 1 && r+d+rs == 0
	}, "one buried copy, no other copy")
	l.mu.Lock()
	require.Equal(t, []int{1, 2, 3}, l.attempts[id], "MaxRetries+1 runs")
	l.mu.Unlock()
}

func TestConsumerBuriesAtOnceOnSkipRetry(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		return fmt.Errorf("bad input: %w", ErrSkipRetry)
	}))
	id, err := newTestProducer(t, c).Delay([]byte("skip"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 20*time.Second, func() bool {
		r, d, rs, b := countJobs(t, c)
		return b == 1 && r+d+rs == 0
	}, "buried after one run")
	l.mu.Lock()
	require.Equal(t, 1, l.starts[id])
	l.mu.Unlock()
}

func TestConsumerRecoversHandlerPanicAsFailure(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.RetryBackoff = 20 * time.Millisecond
	l := newLedger()
	var n atomic.Int32
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		if n.Add(1) == 1 {
			panic("boom")
		}
		return nil
	}))
	id, err := newTestProducer(t, c).Delay([]byte("panic"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(id) == 1 }, "done after a panic")
	l.mu.Lock()
	require.Equal(t, []int{1, 2}, l.attempts[id])
	l.mu.Unlock()
}

func TestConsumerBuriesMalformedBodiesAndKeepsGoing(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	b := c.Beanstalks[0]
	conn, err := beanstalk.DialTimeout("tcp", b.Endpoint, time.Second)
	require.NoError(t, err)
	defer conn.Close()
	tube := &beanstalk.Tube{Conn: conn, Name: b.Tube}
	for _, body := range []string{"not an envelope", "ZQ\xff\x01garbage", ""} {
		_, err := tube.Put([]byte(body), 1, 0, time.Minute)
		require.NoError(t, err)
	}
	id, err := newTestProducer(t, c).Delay([]byte("fine"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(id) == 1 }, "a good job still runs")
	dqtest.Eventually(t, 20*time.Second, func() bool {
		_, _, _, buried := countJobs(t, c)
		return buried == 3
	}, "three malformed bodies buried")
}

func TestConsumerRunsLegacyGoQueueBodies(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	var got, gotBody atomic.Value
	startConsumer(t, c, WithHandle(func(ctx context.Context, body []byte) error {
		j := l.start(ctx)
		gotBody.Store(string(body))
		got.Store(j)
		l.finish(j.ID)
		return nil
	}))
	// go-queue's dq writes the same "<unixnano>/<body>" to two nodes.
	raw := []byte(fmt.Sprintf("%d/%s", time.Now().Add(300*time.Millisecond).UnixNano(), "legacy body"))
	for _, b := range c.Beanstalks[:2] {
		conn, err := beanstalk.DialTimeout("tcp", b.Endpoint, time.Second)
		require.NoError(t, err)
		_, err = (&beanstalk.Tube{Conn: conn, Name: b.Tube}).Put(raw, 1, 0, 5*time.Second)
		require.NoError(t, err)
		_ = conn.Close()
	}
	dqtest.Eventually(t, 20*time.Second, func() bool { return got.Load() != nil }, "legacy job ran")
	awaitNoCopies(t, c, 20*time.Second, "both legacy copies deleted")
	j := got.Load().(Job)
	require.True(t, j.Legacy)
	require.Equal(t, "legacy body", gotBody.Load())
	l.mu.Lock()
	require.Equal(t, 1, l.starts[j.ID], "run once although two copies exist")
	require.Empty(t, l.early)
	l.mu.Unlock()
}

func TestConsumerDoesNotRunARevokedJob(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	p1 := newTestProducer(t, c)
	p2 := newTestProducer(t, c) // revoke from another instance
	revoked, err := p1.Delay([]byte("revoke me"), 1500*time.Millisecond)
	require.NoError(t, err)
	kept, err := p1.Delay([]byte("keep me"), 1500*time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, p2.Revoke(revoked))
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(kept) == 1 }, "kept job runs")
	awaitNoCopies(t, c, 20*time.Second, "revoked copies deleted when due")
	require.Equal(t, 0, l.doneCount(revoked))
	// Once every copy's delete is recorded (in batches, moments after the
	// deletes) the record is a summary kept for History: revoke still
	// knows the job ran.
	dqtest.Eventually(t, 5*time.Second, func() bool {
		return errors.Is(p2.Revoke(kept), ErrDone)
	}, "revoke of the finished job answers ErrDone")
}

func TestRevokeOfARunningJobSaysSo(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	release := make(chan struct{})
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}))
	p := newTestProducer(t, c)
	id, err := p.DelayCtx(context.Background(), []byte("long"), 0, WithID("order-42"))
	require.NoError(t, err)
	require.Equal(t, "order-42", id)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.running.Load() == 1 }, "handler running")
	require.ErrorIs(t, p.Revoke(id), ErrRunning)
	close(release)
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(id) == 1 }, "done")
	awaitNoCopies(t, c, 10*time.Second, "every copy deleted")
	// A WithID record outlives its copies (it deduplicates until DedupeTTL).
	require.ErrorIs(t, p.Revoke(id), ErrDone)
	again, err := p.DelayCtx(context.Background(), []byte("long"), 0, WithID("order-42"))
	require.NoError(t, err)
	require.Equal(t, id, again)
	r, d, rs, _ := countJobs(t, c)
	require.Zero(t, r+d+rs, "a re-enqueued ID writes nothing")
}

func TestConsumerKeepsALongHandlersLease(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.TTR = 3 * time.Second
	l := newLedger()
	h := l.handler(func(ctx context.Context, j Job) error {
		t := time.NewTimer(9 * time.Second) // 3 × TTR
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	startConsumer(t, c, h)
	startConsumer(t, c, h) // a second consumer that would take over a lapsed lease
	id, err := newTestProducer(t, c).Delay([]byte("slow"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 30*time.Second, func() bool { return l.doneCount(id) == 1 }, "slow job done")
	l.mu.Lock()
	require.Equal(t, 1, l.starts[id], "a heartbeating handler is not started twice")
	l.mu.Unlock()
}

func TestConsumerStopDrainsAndHandsInterruptedJobsOver(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 64
	c.ShutdownTimeout = time.Second
	l := newLedger()
	first, err := NewConsumer(c, l.handler(func(ctx context.Context, j Job) error {
		if j.Attempt == 1 {
			<-ctx.Done() // held until Stop cancels it
			return ctx.Err()
		}
		return nil
	}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { first.Start(); close(done) }()

	p := newTestProducer(t, c)
	ids := make([]string, 50)
	for i := range ids {
		ids[i], err = p.Delay([]byte("in flight"), 0)
		require.NoError(t, err)
	}
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.running.Load() == 50 }, "50 handlers in flight")

	start := time.Now()
	first.Stop()
	took := time.Since(start)
	<-done
	require.Less(t, took, c.ShutdownTimeout+time.Second, "Stop took %v", took)

	startConsumer(t, c, l.handler(nil))
	picked := time.Now()
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.allDone(ids) }, "interrupted jobs done by another consumer")
	require.Less(t, time.Since(picked), 2*time.Second+500*time.Millisecond, "picked up within 2 s")
}

func TestConsumerStopWithoutStartReturns(t *testing.T) {
	t.Parallel()
	cs, err := NewConsumer(sharedConf(t), WithHandle(func(context.Context, []byte) error { return nil }))
	require.NoError(t, err)
	cs.Stop()
	cs.Stop()
	cs.Start() // after Stop: returns at once
}

func TestConsumerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := NewConsumer(DqConf{}, WithHandle(func(context.Context, []byte) error { return nil }))
	require.ErrorIs(t, err, ErrBadConfig)
	_, err = NewConsumer(sharedConf(t), nil)
	require.ErrorIs(t, err, ErrBadConfig)
}

// Not parallel: the leak check sees every goroutine of the process.
func TestConsumerLeavesNoGoroutineAfterStop(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	c := sharedConf(t)
	l := newLedger()
	cs, err := NewConsumer(c, l.handler(nil))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	p := newTestProducer(t, c)
	var ids []string
	for i := 0; i < 20; i++ {
		id, err := p.Delay([]byte("x"), time.Duration(i)*50*time.Millisecond)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.allDone(ids) }, "jobs done")
	cs.Stop()
	<-done
	require.NoError(t, p.Close())
}
