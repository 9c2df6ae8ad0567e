package dq

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
)

// staleWriter opens a producer whose WithID put window is 50 ms, so that a
// put still out after it leaves the writer stale: another writer may then
// take the ID over.
func staleWriter(t *testing.T, c DqConf) Producer {
	t.Helper()
	p := openProducer(t, c)
	p.(*producer).window = 50 * time.Millisecond
	return p
}

// testStore returns a claim store on c's Redis, to act as another writer.
func testStore(t *testing.T, c DqConf) *claim.Store {
	t.Helper()
	c, err := c.normalize()
	require.NoError(t, err)
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	return claim.New(rds, c.KeyPrefix, c.DedupeTTL)
}

// awaitWindowPassed waits until job id is reserved by a writer whose put
// window has passed in Redis time, and returns that writer's id.
func awaitWindowPassed(t *testing.T, c DqConf, st *claim.Store, id string) string {
	t.Helper()
	var wid string
	dqtest.Eventually(t, 5*time.Second, func() bool {
		rec := recordOf(t, c, id)
		pw, err := strconv.ParseInt(rec["pw"], 10, 64)
		if rec["st"] != "P" || err != nil {
			return false
		}
		now, err := st.Now(context.Background())
		wid = rec["w"]
		return err == nil && now > pw
	}, "job %s reserved and its put window passed", id)
	return wid
}

type enqueueResult struct {
	id  string
	err error
}

// enqueueAsync runs an enqueue of body under id, due in delay, in the
// background.
func enqueueAsync(p Producer, body string, delay time.Duration, id string) <-chan enqueueResult {
	res := make(chan enqueueResult, 1)
	go func() {
		got, err := p.DelayCtx(context.Background(), []byte(body), delay, WithID(id))
		res <- enqueueResult{got, err}
	}()
	return res
}

// TestStaleWithIDWriterDoesNotAbortAnotherWritersEnqueue: a writer whose put
// window passed while its puts hung, and which then missed its quorum, does
// not revoke the job of the writer that took the ID over, whether that
// writer confirmed it (the ID stands: the stale call returns it) or is still
// putting (the stale call fails and leaves it alone).
func TestStaleWithIDWriterDoesNotAbortAnotherWritersEnqueue(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.IOTimeout = 2 * time.Second // the hung put: time for the other writer
	st := testStore(t, c)
	ctx := context.Background()
	e.Nodes[0].Kill()
	require.NoError(t, e.Nodes[1].Pause())
	t.Cleanup(func() { _ = e.Nodes[1].Resume() })

	for _, confirmed := range []bool{true, false} {
		id := "order-" + strconv.FormatBool(confirmed)
		// A producer of its own: a producer skips a node that timed out.
		res := enqueueAsync(staleWriter(t, c), "stale", time.Hour, id)
		stale := awaitWindowPassed(t, c, st, id)
		rep, err := st.Reserve(ctx, c.claimTube(), id, "standing", time.Now().Add(time.Hour).UnixMilli(), 60000)
		require.NoError(t, err)
		require.Equal(t, claim.Fresh, rep.Kind, "the stale writer's window has passed")
		if confirmed {
			rep, err := st.Confirm(ctx, c.claimTube(), id, "standing")
			require.NoError(t, err)
			require.Equal(t, claim.OK, rep.Kind)
		}
		r := <-res
		rec := recordOf(t, c, id)
		require.Equal(t, "P", rec["st"], "the other writer's job is not aborted (stale writer %s)", stale)
		require.Equal(t, "standing", rec["w"])
		if confirmed {
			require.NoError(t, r.err, "another enqueue of the ID stands")
			require.Equal(t, id, r.id)
			require.Equal(t, "1", rec["ok"])
		} else {
			require.ErrorIs(t, r.err, ErrQuorum, "the ID is the other writer's to settle")
			require.Empty(t, rec["ok"])
		}
	}
}

// TestStaleWithIDWriterWhoseLatePutsLandLeavesOnlyTheStandingEnqueue: a
// writer whose put window passed while a put it needed for its quorum hung,
// and whose puts then all landed, returns the ID but leaves no copy of its
// own beside those of the writer that took the ID over: the enqueue that
// stands is that writer's, with its body and due time.
func TestStaleWithIDWriterWhoseLatePutsLandLeavesOnlyTheStandingEnqueue(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.IOTimeout = 3 * time.Second // the hung puts land when the node wakes
	c.MinWrites = 3               // an enqueue returns at its quorum: make it wait for the hung put
	stale := staleWriter(t, c)
	standing := openProducer(t, c)
	st := testStore(t, c)
	require.NoError(t, e.Nodes[0].Pause())
	t.Cleanup(func() { _ = e.Nodes[0].Resume() })

	const id = "order-7"
	late := enqueueAsync(stale, "stale", time.Hour, id)
	staleWid := awaitWindowPassed(t, c, st, id)
	other := enqueueAsync(standing, "standing", 2*time.Hour, id)
	dqtest.Eventually(t, 5*time.Second, func() bool {
		rec := recordOf(t, c, id)
		return rec["w"] != staleWid && countTube(t, e.Nodes[1].Addr(), c.Beanstalks[0].Tube).Delayed == 2 &&
			countTube(t, e.Nodes[2].Addr(), c.Beanstalks[0].Tube).Delayed == 2
	}, "the other writer took the ID over and put its copies beside the stale writer's")
	require.NoError(t, e.Nodes[0].Resume())

	for _, r := range []enqueueResult{<-late, <-other} {
		require.NoError(t, r.err)
		require.Equal(t, id, r.id)
	}
	var bodies []string
	for _, n := range e.Nodes {
		for _, cp := range nodeCopies(t, n.Addr()) {
			require.Equal(t, id, cp.Env.ID)
			bodies = append(bodies, string(cp.Env.Body))
		}
	}
	require.Equal(t, []string{"standing", "standing", "standing"}, bodies, "only the standing enqueue's copies")
}

// TestConsumerRunsOnlyTheStandingWritersCopiesOfAWithIDJob: a copy left by a
// writer whose reservation of the ID another writer took over (its delete
// failed, or it landed later) is deleted when a consumer sees it, never run,
// even while the standing writer's job waits for a retry.
func TestConsumerRunsOnlyTheStandingWritersCopiesOfAWithIDJob(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.RetryBackoff = 300 * time.Millisecond
	c.MaxRetryBackoff = 300 * time.Millisecond
	st := testStore(t, c)
	ctx := context.Background()
	const id = "order-9"
	due := time.Now().UnixMilli()
	rep, err := st.Reserve(ctx, c.claimTube(), id, "standing", due, 60000)
	require.NoError(t, err)
	require.Equal(t, claim.Fresh, rep.Kind)
	put := func(k int, writer, body string) {
		e := envelope.Envelope{ID: id, DueMs: due, Slot: uint8(k), Count: 3, TTR: 60, Body: []byte(body),
			Headers: []envelope.Header{{Key: envelope.WriterHeader, Value: writer}}}
		raw, err := envelope.Encode(&e, nil)
		require.NoError(t, err)
		putRaw(t, c.Beanstalks[k], raw)
	}
	put(0, "stale", "stale")
	put(1, "standing", "standing")
	rep, err = st.Confirm(ctx, c.claimTube(), id, "standing")
	require.NoError(t, err)
	require.Equal(t, claim.OK, rep.Kind)

	var bodies []string
	var mu sync.Mutex
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		b := j.Headers[envelope.WriterHeader]
		mu.Lock()
		bodies = append(bodies, b)
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			return errors.New("retry once") // the job waits: W
		}
		return nil
	}))
	put(2, "stale", "stale") // lands while the job waits for its retry
	dqtest.Eventually(t, 15*time.Second, func() bool { return l.doneCount(id) == 1 }, "the job ran")
	awaitNoCopies(t, c, 10*time.Second, "every copy deleted")
	mu.Lock()
	require.Equal(t, []string{"standing", "standing"}, bodies, "only the standing writer's copy runs")
	mu.Unlock()
}
