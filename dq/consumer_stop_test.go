package dq

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// untilAfter waits until d after t0: the tests below place a fault at a point
// of a run's timeline (its heartbeat), which is what they are about.
func untilAfter(t0 time.Time, d time.Duration) {
	tm := time.NewTimer(time.Until(t0.Add(d)))
	defer tm.Stop()
	<-tm.C
}

// A handler that returned nil before Stop cancelled it is done, even when its
// heartbeat is still inside a slow Extend when Stop runs out of patience.
func TestStopKeepsAResultThatCameBeforeTheCancel(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{RedisOpts: []dqtest.Option{dqtest.WithAOF()}})
	c := testConf(t, env)
	c.TTR = 3 * time.Second // a heartbeat every second
	c.ShutdownTimeout = 100 * time.Millisecond
	started := make(chan time.Time, 1)
	returning := make(chan struct{})
	l := newLedger()
	cs, err := NewConsumer(c, l.handler(func(ctx context.Context, j Job) error {
		t0 := time.Now()
		started <- t0
		untilAfter(t0, 1300*time.Millisecond) // past the first heartbeat
		close(returning)
		return nil
	}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() { cs.Stop(); <-done })
	id, err := newTestProducer(t, c).Delay([]byte("x"), 0)
	require.NoError(t, err)

	t0 := <-started
	// Redis stops answering before the heartbeat at 1 s: its Extend hangs
	// until its own timeout, with the handler's nil already in.
	untilAfter(t0, 700*time.Millisecond)
	require.NoError(t, env.Redis.Pause())
	<-returning
	stopped := make(chan struct{})
	go func() { cs.Stop(); close(stopped) }()
	untilAfter(t0, 1600*time.Millisecond)
	require.NoError(t, env.Redis.Resume())
	<-stopped
	<-done
	require.Equal(t, 1, l.doneCount(id))
	require.Equal(t, "D", recordOf(t, c, id)["st"], "the run that returned nil is recorded done, not handed back")
}

// stopBound is how long Stop may take whatever the servers do.
func stopBound(c DqConf) time.Duration { return c.ShutdownTimeout + 1500*time.Millisecond }

// Stop returns within ShutdownTimeout + 1.5 s while Redis is down: what Redis
// could not take is left to the lease.
func TestStopReturnsInTimeWithRedisDown(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	c.TTR = 6 * time.Second
	c.ShutdownTimeout = 500 * time.Millisecond
	killed := make(chan struct{})
	l := newLedger()
	cs, err := NewConsumer(c, l.handler(func(ctx context.Context, j Job) error {
		env.Redis.Kill()
		close(killed)
		return nil // its finish finds Redis gone
	}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() { cs.Stop(); <-done })
	_, err = newTestProducer(t, c).Delay([]byte("x"), 0)
	require.NoError(t, err)
	<-killed
	start := time.Now()
	cs.Stop()
	took := time.Since(start)
	<-done
	require.Less(t, took, stopBound(c), "Stop took %v with Redis down", took)
}

// Stop returns within ShutdownTimeout + 1.5 s while a node is frozen
// (SIGSTOP) under a copy being acknowledged: the connection is closed rather
// than waited on.
func TestStopReturnsInTimeWithANodeFrozen(t *testing.T) {
	t.Parallel()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{Nodes: 1})
	c := testConf(t, env)
	c.IOTimeout = 5 * time.Second // a patient client: Stop must not inherit it
	c.ShutdownTimeout = 500 * time.Millisecond
	running := make(chan struct{})
	frozen := make(chan struct{})
	l := newLedger()
	cs, err := NewConsumer(c, l.handler(func(ctx context.Context, j Job) error {
		close(running)
		<-frozen
		return nil // its delete goes to the frozen node
	}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { cs.Start(); close(done) }()
	t.Cleanup(func() { cs.Stop(); <-done })
	t.Cleanup(func() { _ = env.Nodes[0].Resume() })
	_, err = newTestProducer(t, c).Delay([]byte("x"), 0)
	require.NoError(t, err)
	<-running
	require.NoError(t, env.Nodes[0].Pause())
	close(frozen)
	start := time.Now()
	cs.Stop()
	took := time.Since(start)
	<-done
	require.Less(t, took, stopBound(c), "Stop took %v with a node frozen", took)
}

// Stop lands at every point of a stream of copies (reserved, claimed, run,
// deleted) over and over: no copy comes after Stop's drain (a late one
// panicked sending its gone to the closed batcher), and no job is lost.
func TestStopWhileCopiesArriveNeverPanicsOrLosesAJob(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.ShutdownTimeout = 200 * time.Millisecond
	l := newLedger()
	p := newTestProducer(t, c)
	var mu sync.Mutex
	var ids []string
	quit := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for {
			select {
			case <-quit:
				return
			default:
			}
			id, err := p.Delay([]byte("x"), 0)
			if err != nil {
				continue
			}
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}
	}()
	for i := 0; i < 15; i++ {
		cs, err := NewConsumer(c, l.handler(nil))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { cs.Start(); close(done) }()
		before := len(doneSet(l))
		dqtest.Eventually(t, 10*time.Second, func() bool { return len(doneSet(l)) > before }, "a job done")
		untilAfter(time.Now(), time.Duration(rand.IntN(20))*time.Millisecond)
		start := time.Now()
		cs.Stop()
		took := time.Since(start)
		<-done
		require.Less(t, took, stopBound(c), "Stop took %v", took)
	}
	close(quit)
	<-produced
	startConsumer(t, c, l.handler(nil))
	mu.Lock()
	all := append([]string(nil), ids...)
	mu.Unlock()
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.allDone(all) }, "all %d jobs done", len(all))
}
