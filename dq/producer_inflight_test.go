package dq

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// tubePuts is how many jobs were ever put in tube on endpoint (stats-tube
// total-jobs), deleted ones included.
func tubePuts(t testing.TB, endpoint, tube string) int {
	t.Helper()
	conn := dialNode(t, endpoint)
	defer conn.Close()
	stats, err := (&beanstalk.Tube{Conn: conn, Name: tube}).Stats()
	if errors.Is(err, beanstalk.ErrNotFound) {
		return 0
	}
	require.NoError(t, err)
	n, err := strconv.Atoi(stats["total-jobs"])
	require.NoError(t, err)
	return n
}

// awaitSettled waits until no put or delete p started is in flight.
func awaitSettled(t *testing.T, p Producer) {
	t.Helper()
	dqtest.Eventually(t, 10*time.Second, func() bool { return p.(*producer).bg.n.Load() == 0 },
		"the producer's puts and deletes settled")
}

// An enqueue whose ctx ends before its quorum returns then, with an error
// matching both ErrQuorum and the ctx's cause; its job never runs (the
// record is aborted), and the copies of the puts still in flight are deleted
// when they land.
func TestDelayCtxEndingBeforeItsQuorumLeavesNoJob(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.IOTimeout = 3 * time.Second // the hung puts land when the nodes wake
	p := openProducer(t, c)
	_, err := p.Delay([]byte("warm"), time.Hour)
	require.NoError(t, err)
	awaitSettled(t, p)
	tube := c.Beanstalks[0].Tube
	puts := tubePuts(t, e.Nodes[0].Addr(), tube)
	for _, n := range e.Nodes[:2] {
		require.NoError(t, n.Pause())
		t.Cleanup(func() { _ = n.Resume() })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	id, err := p.DelayCtx(ctx, []byte("x"), time.Hour)
	took := time.Since(start)
	require.Less(t, took, time.Second, "DelayCtx with a 300 ms deadline took %v", took)
	require.Empty(t, id)
	require.ErrorIs(t, err, ErrQuorum)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var qe *QuorumError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, "V", recordOf(t, c, qe.ID)["st"], "the job can never run")

	for _, n := range e.Nodes[:2] {
		require.NoError(t, n.Resume())
	}
	dqtest.Eventually(t, 5*time.Second, func() bool {
		return tubePuts(t, e.Nodes[0].Addr(), tube) > puts && countCopies(t, c) == 3
	}, "the late puts landed, and every copy of the job is deleted")
}

// A WithID writer whose put window passed before its quorum, and whose ID
// another writer took over and confirmed meanwhile, returns the ID at its
// quorum with a put still in flight: the copies written are deleted, and so
// is the one that lands after the call returned.
func TestStaleWithIDWriterDeletesTheCopyThatLandsAfterItReturned(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.IOTimeout = 3 * time.Second // the hung puts land when the nodes wake
	stale := staleWriter(t, c)
	st := testStore(t, c)
	ctx := context.Background()
	tube := c.Beanstalks[0].Tube
	for _, n := range e.Nodes[:2] {
		require.NoError(t, n.Pause())
		t.Cleanup(func() { _ = n.Resume() })
	}

	const id = "order-11"
	res := enqueueAsync(stale, "stale", time.Hour, id)
	awaitWindowPassed(t, c, st, id)
	rep, err := st.Reserve(ctx, c.claimTube(), id, "standing", time.Now().Add(time.Hour).UnixMilli(), 60000)
	require.NoError(t, err)
	require.Equal(t, claim.Fresh, rep.Kind)
	rep, err = st.Confirm(ctx, c.claimTube(), id, "standing")
	require.NoError(t, err)
	require.Equal(t, claim.OK, rep.Kind)

	require.NoError(t, e.Nodes[1].Resume()) // the quorum: node 2 and node 1
	r := <-res
	require.NoError(t, r.err, "another enqueue of the ID stands")
	require.Equal(t, id, r.id)

	// Node 0's put was still in flight: it lands now.
	require.NoError(t, e.Nodes[0].Resume())
	dqtest.Eventually(t, 5*time.Second, func() bool {
		return tubePuts(t, e.Nodes[0].Addr(), tube) == 1 && countCopies(t, c) == 0
	}, "the late copy landed and was deleted, as were the others")
	require.Equal(t, "standing", recordOf(t, c, id)["w"])
}

// Revoke deletes the copies this producer wrote, but a delete sent to a
// node that froze waits for IOTimeout: RevokeCtx must still answer by its
// deadline.
func TestRevokeCtxHonoursItsDeadlineWhenANodeIsFrozen(t *testing.T) {
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.IOTimeout = 3 * time.Second
	p := openProducer(t, c)
	id, err := p.Delay([]byte("x"), time.Hour)
	require.NoError(t, err)
	awaitSettled(t, p) // every copy written and known to the producer
	require.NoError(t, e.Nodes[0].Pause())
	t.Cleanup(func() { _ = e.Nodes[0].Resume() })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = p.RevokeCtx(ctx, id)
	took := time.Since(start)
	require.NoError(t, err)
	require.Less(t, took, time.Second, "RevokeCtx with a 300 ms deadline took %v (IOTimeout %v)", took, c.IOTimeout)
	require.Equal(t, "V", recordOf(t, c, id)["st"])
}
