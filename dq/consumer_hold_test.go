package dq

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// Copies reserved before their due time wait in memory until then (a
// beanstalkd delay is whole seconds, so a copy is ready up to a second
// early). A consumer under a backlog holds thousands: each must cost its
// memory only, not a goroutine and a timer, and still run at its due time,
// never early, and once. Not parallel: it counts the process's goroutines.
func TestConsumerHoldsCopiesBeforeTheirDueTimeWithoutAGoroutineEach(t *testing.T) {
	c := sharedConf(t)
	l := newLedger()
	base := runtime.NumGoroutine()
	cs := startConsumer(t, c, l.handler(nil)).(*consumer)
	p := newTestProducer(t, c)

	// Due just under two seconds ahead: the copies get a 1 s delay and are
	// then held for most of a second, together.
	const jobs = 200
	due := time.Now().Add(1990 * time.Millisecond)
	ids := make([]string, jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < jobs; i += 8 {
				id, err := p.At([]byte("held"), due)
				mu.Lock()
				ids[i], errs = id, append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	// The peak of copies in hand before the due time, and the goroutines
	// then.
	peakHeld, goroutines := 0, 0
	for time.Until(due) > 50*time.Millisecond {
		if n := cs.gate.inHand(); n > peakHeld {
			peakHeld, goroutines = n, runtime.NumGoroutine()
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.GreaterOrEqual(t, peakHeld, 2*jobs, "most copies were held before their due time")
	require.Less(t, goroutines-base, peakHeld/4,
		"%d copies held with %d goroutines more than before the consumer started", peakHeld, goroutines-base)

	dqtest.Eventually(t, 10*time.Second, func() bool { return l.allDone(ids) }, "every held job runs")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.early, "handlers started before their due time")
	for _, id := range ids {
		require.Equal(t, 1, l.starts[id], "job %s", id)
	}
}

// The copies of a job that reach a consumer together are claimed once: the
// others wait for that claim's outcome. When Redis is slow to answer (frozen
// here past the due time), they must go on waiting for it rather than claim
// too, be told the job is running and go back to their nodes with a delay:
// under a backlog those extra claims and releases load the very Redis that
// was slow.
func TestCopiesOfAJobWaitForItsSlowClaimInsteadOfClaimingToo(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	l := newLedger()
	cs := startConsumer(t, c, l.handler(nil)).(*consumer)
	p := newTestProducer(t, c)
	due := time.Now().Add(1500 * time.Millisecond)
	id, err := p.At([]byte("slow claim"), due)
	require.NoError(t, err)
	dqtest.Eventually(t, 3*time.Second, func() bool { return cs.hold.held() == 3 }, "the three copies held")

	require.NoError(t, env.Redis.Pause())
	// Frozen from before the due time to well past it and the second the
	// other copies used to wait.
	time.Sleep(time.Until(due.Add(1500 * time.Millisecond)))
	require.NoError(t, env.Redis.Resume())

	dqtest.Eventually(t, 10*time.Second, func() bool { return l.doneCount(id) == 1 }, "the job ran")
	awaitNoCopies(t, c, 5*time.Second, "every copy deleted")
	for _, b := range c.Beanstalks {
		stats, err := dialNode(t, b.Endpoint).Stats()
		require.NoError(t, err)
		require.Equal(t, "0", stats["cmd-release"], "copies released on %s", b.Endpoint)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Equal(t, 1, l.starts[id])
	require.Empty(t, l.early)
}

// Jobs due at the same moment are claimed together: the holder sends the
// claims of every job it lets go at once in one Redis round trip, so that
// the last of them does not wait for the replies to the others. At a
// thousand jobs a second, most jobs share their due millisecond with another.
func TestJobsDueTogetherAreClaimedInOneRoundTrip(t *testing.T) {
	t.Parallel()
	b := heldTogether(t, 4)
	require.Equal(t, int64(1), b.claimTrips(t), "the claims of the jobs due together shared one round trip")
	b.finish(t)
}

// A burst of jobs due at one moment (thousands at 09:00) is claimed in
// chunks: the runs of the first chunk start once its replies are in, not
// after the replies to the last chunk. Chunks of 2 here, for 5 jobs: 3 round
// trips, and each job runs once.
func TestABurstOfJobsDueTogetherIsClaimedInChunks(t *testing.T) {
	t.Parallel()
	b := heldTogether(t, 5, withClaimChunk(2))
	require.Equal(t, int64(3), b.claimTrips(t), "5 claims in chunks of 2")
	b.finish(t)
}

// dueTogether is a consumer holding every copy of jobs due at one moment,
// whose handlers wait for release.
type dueTogether struct {
	c       DqConf
	cs      *consumer
	l       *ledger
	ids     []string
	release func()
}

// heldTogether enqueues jobs due at one moment 1.5 s ahead, for a consumer
// started with opts, and returns once it holds all their copies.
func heldTogether(t *testing.T, jobs int, opts ...ConsumerOption) *dueTogether {
	t.Helper()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	b := &dueTogether{c: testConf(t, env), l: newLedger(), ids: make([]string, jobs)}
	released := make(chan struct{})
	b.cs = startConsumer(t, b.c, b.l.handler(func(ctx context.Context, _ Job) error {
		select {
		case <-released:
		case <-ctx.Done():
		}
		return nil
	}), opts...).(*consumer)
	var once sync.Once
	b.release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(b.release) // before the consumer stops
	p := newTestProducer(t, b.c)
	due := time.Now().Add(1500 * time.Millisecond)
	for i := range b.ids {
		id, err := p.At([]byte("together"), due)
		require.NoError(t, err)
		b.ids[i] = id
	}
	dqtest.Eventually(t, 3*time.Second, func() bool { return b.cs.hold.held() == 3*jobs }, "every copy held")
	return b
}

// claimTrips waits until every job's handler runs and returns the round
// trips the job scripts took meanwhile: the claims' (no handler returned).
func (b *dueTogether) claimTrips(t *testing.T) int64 {
	t.Helper()
	trips := b.cs.store.RoundTrips()
	dqtest.Eventually(t, 5*time.Second, func() bool { return int(b.l.running.Load()) == len(b.ids) },
		"every job running")
	return b.cs.store.RoundTrips() - trips
}

// finish releases the handlers and checks that every job ran once, not
// early, and left no copy.
func (b *dueTogether) finish(t *testing.T) {
	t.Helper()
	b.release()
	dqtest.Eventually(t, 5*time.Second, func() bool { return b.l.allDone(b.ids) }, "every job done")
	awaitNoCopies(t, b.c, 5*time.Second, "every copy deleted")
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	require.Empty(t, b.l.early)
	for _, id := range b.ids {
		require.Equal(t, 1, b.l.starts[id], "job %s", id)
	}
}

// A backlog of jobs due now must not be reserved faster than it can be
// claimed: each copy in hand that is not held for its due time is claimed at
// once, and a few thousand claims queued in the pipeline wait longer than
// RedisTimeout, time out and pause the consumer as if Redis were down. The
// copies being claimed or run stay within a few times Workers.
func TestConsumerUnderABacklogClaimsAFewTimesWorkersCopiesAtOnce(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 4
	p := newTestProducer(t, c)
	const jobs = 1500
	ids := make([]string, jobs)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < jobs; i += 8 {
				id, err := p.Delay([]byte("backlog"), 0)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())

	l := newLedger()
	cs := startConsumer(t, c, l.handler(nil)).(*consumer)
	peak := 0
	dqtest.Eventually(t, 60*time.Second, func() bool {
		peak = max(peak, cs.gate.inHand()-cs.hold.held())
		return l.allDone(ids)
	}, "the backlog drained")
	require.LessOrEqual(t, peak, 4*c.Workers+len(cs.loops)*reserveBatch,
		"copies claimed or run at once, Workers %d", c.Workers)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		require.Equal(t, 1, l.starts[id])
	}
}
