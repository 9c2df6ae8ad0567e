package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestReserverReservesOnlyItsTube(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[1].Addr(), dqtest.Name(t)
	c := raw(t, addr)
	inDefault, err := c.Put([]byte("default's"), 0, 0, time.Minute)
	require.NoError(t, err)
	defer c.Delete(inDefault)
	inOther, err := beanstalk.NewTube(c, tube+"-other").Put([]byte("other's"), 0, 0, time.Minute)
	require.NoError(t, err)
	defer c.Delete(inOther)

	r := NewReserver(addr, tube, Options{})
	defer r.Close()
	require.Equal(t, addr, r.Endpoint())
	cp, err := reserveOne(r, 0)
	require.ErrorIs(t, err, ErrTimeout, "ready jobs of other tubes must not be reserved (got %v)", cp)

	mine, err := beanstalk.NewTube(c, tube).Put([]byte("mine"), 0, 0, time.Minute)
	require.NoError(t, err)
	cp, err = reserveOne(r, time.Second)
	require.NoError(t, err)
	require.Equal(t, mine, cp.ID)
	require.Equal(t, "mine", string(cp.Body))
	require.Equal(t, addr, cp.Endpoint())
	require.NoError(t, cp.Delete())

	require.Equal(t, "ready", jobState(t, c, inDefault))
	require.Equal(t, "ready", jobState(t, c, inOther))
}

func TestReserveTimesOutWithinItsTimeoutPlusIOTimeout(t *testing.T) {
	t.Parallel()
	const ioTimeout = 400 * time.Millisecond
	r := NewReserver(dqtest.Shared(t).Nodes[2].Addr(), dqtest.Name(t), Options{IOTimeout: ioTimeout})
	defer r.Close()

	start := time.Now()
	cp, err := reserveOne(r, 1500*time.Millisecond) // beanstalkd waits whole seconds: 1 s
	took := time.Since(start)
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorIs(t, err, beanstalk.ErrTimeout)
	require.Nil(t, cp)
	require.GreaterOrEqual(t, took, 900*time.Millisecond, "the reserve blocked on the server, longer than IOTimeout")
	require.Less(t, took, time.Second+ioTimeout)

	// The timeout was an answer, not a failure: the connection stays.
	_, err = reserveOne(r, 0)
	require.ErrorIs(t, err, ErrTimeout)
}

func TestCopyActionsWorkOnTheReservingConnection(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t)
	n := New(addr, tube, Options{})
	defer n.Close()
	p, err := n.Put(context.Background(), []byte("job"), 3, 0, time.Minute)
	require.NoError(t, err)
	r := NewReserver(addr, tube, Options{})
	defer r.Close()
	c := raw(t, addr)

	cp, err := reserveOne(r, time.Second)
	require.NoError(t, err)
	require.Equal(t, p.ID, cp.ID)
	require.Equal(t, "reserved", jobState(t, c, cp.ID))
	require.NoError(t, cp.Touch())
	require.ErrorIs(t, c.Delete(cp.ID), beanstalk.ErrNotFound, "another connection cannot delete a reserved job")

	require.NoError(t, cp.Release(7, 0))
	st, err := c.StatsJob(cp.ID)
	require.NoError(t, err)
	require.Equal(t, "ready", st["state"])
	require.Equal(t, "7", st["pri"])

	cp, err = reserveOne(r, time.Second)
	require.NoError(t, err)
	require.NoError(t, cp.Bury(9))
	require.Equal(t, "buried", jobState(t, c, cp.ID))
	require.ErrorIs(t, cp.Touch(), ErrNotFound, "a buried job is no longer reserved")
	require.NoError(t, c.KickJob(cp.ID))

	cp, err = reserveOne(r, time.Second)
	require.NoError(t, err)
	require.NoError(t, cp.Delete())
	err = cp.Delete()
	require.ErrorIs(t, err, ErrNotFound)
	require.True(t, IsDefinite(err))
	_, err = c.StatsJob(cp.ID)
	require.ErrorIs(t, err, beanstalk.ErrNotFound)
}

func TestOldCopyAfterAReconnectIsConnGoneAndItsJobIsReadyAgain(t *testing.T) {
	t.Parallel()
	s := dqtest.NewBeanstalkd(t)
	tube := dqtest.Name(t)
	c := raw(t, s.Addr())
	id, err := beanstalk.NewTube(c, tube).Put([]byte("job"), 0, 0, time.Minute)
	require.NoError(t, err)
	const ioTimeout = 300 * time.Millisecond
	r := NewReserver(s.Addr(), tube, Options{IOTimeout: ioTimeout, Backoff: 100 * time.Millisecond})
	defer r.Close()
	old, err := reserveOne(r, time.Second)
	require.NoError(t, err)

	// A frozen node times the connection out; it is closed and replaced.
	require.NoError(t, s.Pause())
	start := time.Now()
	_, err = reserveOne(r, 0)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrTimeout)
	require.Less(t, time.Since(start), ioTimeout+500*time.Millisecond)
	require.NoError(t, s.Resume())

	err = old.Delete()
	require.ErrorIs(t, err, ErrConnGone)
	require.True(t, IsDefinite(err))
	require.ErrorIs(t, old.Touch(), ErrConnGone)
	require.ErrorIs(t, old.Release(0, 0), ErrConnGone)
	require.ErrorIs(t, old.Bury(0), ErrConnGone)

	var again *Copy
	dqtest.Eventually(t, 5*time.Second, func() bool {
		again, err = reserveOne(r, time.Second)
		return err == nil
	}, "the Reserver redials after its back-off: last error %v", err)
	require.Equal(t, id, again.ID, "closing the old connection put its job back to ready")
	require.NoError(t, again.Delete())
}

func TestTouchQueuedBehindABlockedReserveWaitsForIt(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[1].Addr(), dqtest.Name(t)
	c := raw(t, addr)
	_, err := beanstalk.NewTube(c, tube).Put([]byte("job"), 0, 0, time.Minute)
	require.NoError(t, err)
	// The reserve below blocks for 1 s, over three times IOTimeout.
	r := NewReserver(addr, tube, Options{IOTimeout: 300 * time.Millisecond})
	defer r.Close()
	cp, err := reserveOne(r, time.Second)
	require.NoError(t, err)

	blocked := make(chan error, 1)
	go func() {
		_, err := reserveOne(r, time.Second)
		blocked <- err
	}()
	dqtest.Eventually(t, 2*time.Second, func() bool {
		return tubeStat(t, c, tube, "current-waiting") == 1
	}, "the second reserve is waiting on the server")

	start := time.Now()
	require.NoError(t, cp.Touch(), "a touch answered after the reserve returns must not time out")
	require.Greater(t, time.Since(start), 300*time.Millisecond, "the touch waited behind the reserve")
	require.ErrorIs(t, <-blocked, ErrTimeout)
	require.NoError(t, cp.Delete(), "the connection survived")
}

func TestRequestsDuringAReserveShareOneWriteOnceItsReplyIsIn(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[1].Addr(), dqtest.Name(t)
	c := raw(t, addr)
	const n = 20
	for range n {
		_, err := beanstalk.NewTube(c, tube).Put([]byte("job"), 0, 0, time.Minute)
		require.NoError(t, err)
	}
	r := NewReserver(addr, tube, Options{})
	defer r.Close()
	var copies []*Copy
	for range n {
		cp, err := reserveOne(r, time.Second)
		require.NoError(t, err)
		copies = append(copies, cp)
	}

	blocked := make(chan error, 1)
	go func() {
		_, err := reserveOne(r, time.Second)
		blocked <- err
	}()
	dqtest.Eventually(t, 2*time.Second, func() bool {
		return tubeStat(t, c, tube, "current-waiting") == 1
	}, "the reserve is waiting on the server")
	dc := r.cur.Load().dc
	before := dc.writes.Load()
	deleted := make(chan error, n)
	for _, cp := range copies {
		go func() { deleted <- cp.Delete() }()
	}
	dqtest.Eventually(t, 2*time.Second, func() bool {
		dc.wmu.Lock()
		defer dc.wmu.Unlock()
		return bytes.Count(dc.pending, []byte("delete ")) == n
	}, "every delete is kept back")
	require.Equal(t, n, tubeStat(t, c, tube, "current-jobs-reserved"), "nothing was sent while the reserve waits")

	require.ErrorIs(t, <-blocked, ErrTimeout)
	for range n {
		require.NoError(t, <-deleted)
	}
	require.Equal(t, 0, tubeStat(t, c, tube, "current-jobs-reserved"))
	require.Equal(t, int64(1), dc.writes.Load()-before, "the kept deletes went out in one write")
}

func TestCloseInterruptsABlockedReserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		reserve func(r *Reserver) error
	}{
		{"one", func(r *Reserver) error { _, err := reserveOne(r, 10*time.Second); return err }},
		{"a batch", func(r *Reserver) error {
			cps, err := r.ReserveUpTo(4, 10*time.Second)
			assert.Empty(t, cps)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, tube := dqtest.Shared(t).Nodes[2].Addr(), dqtest.Name(t)
			c := raw(t, addr)
			r := NewReserver(addr, tube, Options{})
			blocked := make(chan error, 1)
			go func() { blocked <- tc.reserve(r) }()
			dqtest.Eventually(t, 2*time.Second, func() bool {
				return tubeStat(t, c, tube, "current-waiting") == 1
			}, "the reserve is waiting on the server")

			require.NoError(t, r.Close())
			select {
			case err := <-blocked:
				require.ErrorIs(t, err, ErrClosed)
			case <-time.After(2 * time.Second):
				t.Fatal("Close did not interrupt the blocked reserve")
			}
			require.ErrorIs(t, r.Close(), ErrClosed)
			require.ErrorIs(t, tc.reserve(r), ErrClosed)
		})
	}
}

// Not parallel: goleak looks at every goroutine of the process, so this test
// runs while no other test of the package does.
func TestNoGoroutineOutlivesClose(t *testing.T) {
	addr, tube := dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	n := New(addr, tube, Options{})
	_, err := n.Put(context.Background(), []byte("x"), 0, 0, time.Minute)
	require.NoError(t, err)
	r := NewReserver(addr, tube, Options{})
	cp, err := reserveOne(r, time.Second)
	require.NoError(t, err)
	require.NoError(t, cp.Delete())

	blocked := make(chan error, 1)
	go func() {
		_, err := reserveOne(r, 5*time.Second)
		blocked <- err
	}()
	c := raw(t, addr)
	dqtest.Eventually(t, 2*time.Second, func() bool {
		return tubeStat(t, c, tube, "current-waiting") == 1
	}, "the reserve is waiting on the server")
	require.NoError(t, r.Close())
	require.ErrorIs(t, <-blocked, ErrClosed)
	require.NoError(t, c.Close())
	require.NoError(t, n.Close())
}

func TestReserveUpToFetchesSeveralInOneWriteAndWaitsOnlyOnce(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[2].Addr(), dqtest.Name(t)
	c := raw(t, addr)
	r := NewReserver(addr, tube, Options{})
	defer r.Close()
	// Dial and watch first: a fresh connection's first write also carries
	// its watch and ignore.
	_, err := reserveOne(r, 0)
	require.ErrorIs(t, err, ErrTimeout)
	for i := range 5 {
		_, err := beanstalk.NewTube(c, tube).Put([]byte{'a' + byte(i)}, 0, 0, time.Minute)
		require.NoError(t, err)
	}

	dc := r.cur.Load().dc
	before := dc.writes.Load()
	copies, err := r.ReserveUpTo(8, time.Second)
	require.NoError(t, err)
	require.Equal(t, int64(1), dc.writes.Load()-before, "eight reserves in one write")
	var bodies []string
	for _, cp := range copies {
		bodies = append(bodies, string(cp.Body))
	}
	require.ElementsMatch(t, []string{"a", "b", "c", "d", "e"}, bodies, "every ready job, once")
	require.Equal(t, 5, tubeStat(t, c, tube, "current-jobs-reserved"))

	// Nothing ready: one request waits its second, the others answer at
	// once, so the call lasts about a second, not eight.
	start := time.Now()
	_, err = r.ReserveUpTo(8, time.Second)
	require.ErrorIs(t, err, ErrTimeout)
	require.Less(t, time.Since(start), 3*time.Second)

	// A job put while the batch waits is taken by it.
	got := make(chan []*Copy, 1)
	go func() {
		cps, err := r.ReserveUpTo(8, 5*time.Second)
		assert.NoError(t, err)
		got <- cps
	}()
	dqtest.Eventually(t, 2*time.Second, func() bool {
		return tubeStat(t, c, tube, "current-waiting") == 1
	}, "the batch's waiting request is on the server")
	_, err = beanstalk.NewTube(c, tube).Put([]byte("f"), 0, 0, time.Minute)
	require.NoError(t, err)
	late := <-got
	require.Len(t, late, 1)
	require.Equal(t, "f", string(late[0].Body))

	for _, cp := range append(copies, late...) {
		require.NoError(t, cp.Delete())
	}
}

// reserveOne reserves one job as the consumer's loop does, with a batch of 1.
func reserveOne(r *Reserver, timeout time.Duration) (*Copy, error) {
	cps, err := r.ReserveUpTo(1, timeout)
	if err != nil {
		return nil, err
	}
	return cps[0], nil
}
