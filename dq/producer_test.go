package dq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
)

// openProducer returns a producer for c, closed when the test ends.
func openProducer(t *testing.T, c DqConf, opts ...ProducerOption) Producer {
	t.Helper()
	p, err := NewProducer(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// settle waits until the puts p left in flight when its enqueues returned
// (an enqueue returns at MinWrites copies) have settled, so that a test
// counts every copy.
func settle(t *testing.T, p Producer) {
	t.Helper()
	pr := p.(*producer)
	pr.readLeft() // as Close does: no enqueue follows to read them
	require.True(t, pr.bg.wait(10*time.Second), "puts in flight settled")
}

// peekDelayed returns the one delayed job expected in tube on endpoint.
func peekDelayed(t *testing.T, endpoint, tube string) storedCopy {
	t.Helper()
	conn := dialNode(t, endpoint)
	id, body, err := (&beanstalk.Tube{Conn: conn, Name: tube}).PeekDelayed()
	require.NoError(t, err, "a delayed copy on %s", endpoint)
	env, err := envelope.Decode(body, nil, envelope.Accept{})
	require.NoError(t, err)
	stats, err := conn.StatsJob(id)
	require.NoError(t, err)
	return storedCopy{Endpoint: endpoint, JobID: id, Env: env, Stats: stats}
}

func TestProducerWritesOneEnvelopePerSlotOnDistinctNodes(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)

	at := time.Now().Add(3700 * time.Millisecond)
	id, err := p.AtCtx(context.Background(), []byte("hello"), at, WithPriority(7), WithHeader("type", "greet"))
	require.NoError(t, err)
	due, ok := envelope.IDDue(id)
	require.True(t, ok, "a generated ID")
	wantDue := at.Add(time.Millisecond - 1).UnixMilli() // rounded up, never down
	require.Equal(t, wantDue, due)
	settle(t, p)

	var slots []int
	for _, b := range c.Beanstalks {
		require.Equal(t, tubeCounts{Delayed: 1}, countTube(t, b.Endpoint, b.Tube))
		cp := peekDelayed(t, b.Endpoint, b.Tube)
		require.Equal(t, id, cp.Env.ID)
		require.Equal(t, wantDue, cp.Env.DueMs, "the exact due time")
		require.Equal(t, uint8(3), cp.Env.Count)
		require.Zero(t, cp.Env.Flags)
		require.Equal(t, uint32(7), cp.Env.Priority)
		require.Equal(t, uint32(30), cp.Env.TTR)
		require.Equal(t, []byte("hello"), cp.Env.Body)
		v, _ := cp.Env.Header("type")
		require.Equal(t, "greet", v)
		slots = append(slots, int(cp.Env.Slot))

		// 3.7 s ahead: beanstalkd gets whole seconds rounded down.
		require.Equal(t, "3", cp.Stats["delay"])
		require.Equal(t, "30", cp.Stats["ttr"])
		require.Equal(t, "7", cp.Stats["pri"])
	}
	slices.Sort(slots)
	require.Equal(t, []int{0, 1, 2}, slots)
}

func TestProducerDelayWritesRedisTimePlusDelayAndFloorSeconds(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	redisNow := func() int64 {
		v, err := rds.EvalCtx(context.Background(),
			"local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)", nil)
		require.NoError(t, err)
		return v.(int64)
	}

	const delay = 90*time.Second + 300*time.Millisecond
	before := redisNow()
	id, err := p.Delay(nil, delay)
	require.NoError(t, err)
	after := redisNow()
	// Delay returned at its quorum: the third copy may still be on its way
	// (its node dialled on first use).
	settle(t, p)

	for _, b := range c.Beanstalks {
		cp := peekDelayed(t, b.Endpoint, b.Tube)
		require.Equal(t, id, cp.Env.ID)
		require.Empty(t, cp.Env.Body, "an empty body is allowed")
		// The producer's clock follows Redis within half a sampled round
		// trip, which a loaded machine stretches.
		const slack = 250
		require.GreaterOrEqual(t, cp.Env.DueMs, before+delay.Milliseconds()-slack)
		require.LessOrEqual(t, cp.Env.DueMs, after+delay.Milliseconds()+slack)
		require.Equal(t, "90", cp.Stats["delay"], "floor of 90.3 s")
	}
}

func TestProducerRefusesInvalidJobsBeforeWritingAnything(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	ctx := context.Background()

	// The largest body that fits with its envelope goes through beanstalkd's
	// own limit (65535 by default); one byte more is refused here.
	fits := c.withDefaults().MaxJobSize - envelope.Overhead(&envelope.Envelope{ID: envelope.NewID(0)}, nil)
	_, err := p.Delay(make([]byte, fits), time.Hour)
	require.NoError(t, err)
	// The call returns at its quorum; the last copy may land just after.
	dqtest.Eventually(t, 5*time.Second, func() bool { return countCopies(t, c) == 3 }, "every copy written")

	cases := []struct {
		name string
		call func() (string, error)
		want error
	}{
		{"too big", func() (string, error) { return p.Delay(make([]byte, fits+1), time.Hour) }, ErrJobTooBig},
		{"too big with a header", func() (string, error) {
			return p.DelayCtx(ctx, make([]byte, fits), time.Hour, WithHeader("k", "v"))
		}, ErrJobTooBig},
		{"past time", func() (string, error) { return p.At([]byte("x"), time.Now().Add(-time.Second)) }, ErrTimeBeforeNow},
		{"negative delay", func() (string, error) { return p.Delay([]byte("x"), -time.Millisecond) }, ErrNegativeDelay},
		{"id with a space", func() (string, error) {
			return p.DelayCtx(ctx, []byte("x"), time.Hour, WithID("a b"))
		}, ErrBadID},
		{"id with a hash tag", func() (string, error) {
			return p.DelayCtx(ctx, []byte("x"), time.Hour, WithID("{a}"))
		}, ErrBadID},
		{"id too long", func() (string, error) {
			return p.DelayCtx(ctx, []byte("x"), time.Hour, WithID(strings.Repeat("a", 201)))
		}, ErrBadID},
	}
	for _, tc := range cases {
		id, err := tc.call()
		require.ErrorIs(t, err, tc.want, tc.name)
		require.Empty(t, id, tc.name)
	}
	settle(t, p)
	require.Equal(t, 3, countCopies(t, c), "nothing written by refused jobs")
}

func TestNewProducerRejectsABadConfigNamingTheField(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)

	none := c
	none.Beanstalks = nil
	_, err := NewProducer(none)
	require.ErrorIs(t, err, ErrBadConfig)

	quorum := c
	quorum.Replicas, quorum.MinWrites = 2, 3
	_, err = NewProducer(quorum)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "MinWrites", ce.Field)
}

func TestProducerWithIDWritesAJobOnceAndReturnsItsID(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	ctx := context.Background()

	id, err := p.DelayCtx(ctx, []byte("first"), time.Hour, WithID("order-42"))
	require.NoError(t, err)
	require.Equal(t, "order-42", id)
	settle(t, p)
	require.Equal(t, 3, countCopies(t, c))

	// A retried request, from this producer or another, writes nothing.
	other := openProducer(t, c)
	for _, q := range []Producer{p, other} {
		id, err = q.DelayCtx(ctx, []byte("second"), time.Minute, WithID("order-42"))
		require.NoError(t, err)
		require.Equal(t, "order-42", id)
	}
	settle(t, p)
	settle(t, other)
	require.Equal(t, 3, countCopies(t, c))
	cp := peekDelayed(t, c.Beanstalks[0].Endpoint, c.Beanstalks[0].Tube)
	require.Equal(t, []byte("first"), cp.Env.Body, "the first enqueue stands")

	// Racing enqueues of one new ID write it once too.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := p.DelayCtx(ctx, []byte("race"), time.Hour, WithID("order-43"))
			if err == nil && id != "order-43" {
				err = fmt.Errorf("id %q", id)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	settle(t, p)
	require.Equal(t, 6, countCopies(t, c))
}

func TestProducerEnqueuesConcurrentlyWithUniqueIDs(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)

	const workers, each = 16, 40
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				id, err := p.Delay([]byte("concurrent"), time.Hour)
				if err != nil {
					errs <- err
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := make(map[string]bool)
	for id := range ids {
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
	require.Len(t, seen, workers*each)
	settle(t, p)
	for _, b := range c.Beanstalks {
		require.Equal(t, workers*each, countTube(t, b.Endpoint, b.Tube).Delayed, "every job on every node")
	}
}

func TestProducerCloseReleasesEverythingAndLaterCallsFail(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	c := sharedConf(t)
	p, err := NewProducer(c)
	require.NoError(t, err)
	id, err := p.Delay([]byte("x"), time.Hour)
	require.NoError(t, err)

	require.NoError(t, p.Close())
	require.ErrorIs(t, p.Close(), ErrClosed)
	_, err = p.Delay([]byte("x"), time.Hour)
	require.ErrorIs(t, err, ErrClosed)
	_, err = p.At([]byte("x"), time.Now().Add(time.Hour))
	require.ErrorIs(t, err, ErrClosed)
	_, err = p.DelayCtx(context.Background(), []byte("x"), time.Hour, WithID("closed"))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, p.Revoke(id), ErrClosed)
	require.Equal(t, 3, countCopies(t, c))
}

func TestProducerRevokeFromAnotherProducerRecordsTheRevocation(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	id, err := p.Delay([]byte("x"), time.Hour)
	require.NoError(t, err)

	// A second instance knows nothing of the copies: the record stops them.
	require.NoError(t, openProducer(t, c).Revoke(id))
	rec := recordOf(t, c, id)
	require.Equal(t, "V", rec["st"])
	require.Equal(t, "revoke", rec["why"])
	settle(t, p)
	require.Equal(t, 3, countCopies(t, c), "copies are left to the consumers")

	// Revoking again is still a success.
	require.NoError(t, openProducer(t, c).Revoke(id))
}

func TestProducerRevokeDeletesTheCopiesItPut(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	id, err := p.Delay([]byte("x"), time.Hour)
	require.NoError(t, err)
	settle(t, p)
	require.Equal(t, 3, countCopies(t, c))

	require.NoError(t, p.Revoke(id))
	require.Equal(t, "V", recordOf(t, c, id)["st"])
	require.Equal(t, 0, countCopies(t, c))
}

func TestProducerRevokeAnswersWhetherTheJobCanStillBeStopped(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)
	ctx := context.Background()

	// No record and a due time that has passed: it may have run already.
	past := envelope.NewID(time.Now().Add(-time.Minute).UnixMilli())
	require.ErrorIs(t, p.Revoke(past), ErrMaybeDone)
	require.ErrorIs(t, p.Revoke("never-enqueued"), ErrMaybeDone, "a user ID carries no due time")

	// A future job is revoked, and its ID cannot be enqueued again.
	id, err := p.DelayCtx(ctx, []byte("x"), time.Hour, WithID("invoice-7"))
	require.NoError(t, err)
	require.NoError(t, p.Revoke(id))
	_, err = p.DelayCtx(ctx, []byte("x"), time.Hour, WithID("invoice-7"))
	require.ErrorIs(t, err, ErrRevoked)
	future := envelope.NewID(time.Now().Add(time.Hour).UnixMilli())
	require.NoError(t, p.Revoke(future))

	// Too late: the record says which (as a consumer leaves it).
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	for st, want := range map[string]error{"R": ErrRunning, "D": ErrDone, "X": ErrDead} {
		id := envelope.NewID(time.Now().Add(-time.Second).UnixMilli())
		key := c.KeyPrefix + ":" + c.claimTube() + ":" + id
		require.NoError(t, rds.Hset(key, "st", st))
		require.NoError(t, rds.Expire(key, 60))
		require.ErrorIs(t, p.Revoke(id), want, st)
		require.Equal(t, st, recordOf(t, c, id)["st"], "left as it was")
	}

	require.ErrorIs(t, p.Revoke("bad id"), ErrBadID)
	require.ErrorIs(t, p.Revoke(""), ErrBadID)
}

func TestProducerRevokeUnderstandsGoQueueIDs(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := openProducer(t, c)

	// What go-queue's producer wrote: "<unixnano>/<body>" on two nodes, and
	// the joined host:port/tube/id references it returned.
	raw := []byte(strconv.FormatInt(time.Now().Add(time.Hour).UnixNano(), 10) + "/legacy body")
	var refs []string
	for _, b := range c.Beanstalks[:2] {
		conn := dialNode(t, b.Endpoint)
		jid, err := (&beanstalk.Tube{Conn: conn, Name: b.Tube}).Put(raw, 1, time.Hour, time.Minute)
		require.NoError(t, err)
		refs = append(refs, fmt.Sprintf("%s/%s/%d", b.Endpoint, b.Tube, jid))
	}
	require.Equal(t, 2, countCopies(t, c))

	require.NoError(t, p.Revoke(strings.Join(refs, ",")))
	require.Equal(t, 0, countCopies(t, c))
	require.Equal(t, "V", recordOf(t, c, envelope.LegacyID(raw))["st"])

	// Nothing left to find.
	require.ErrorIs(t, p.Revoke(refs[0]), ErrMaybeDone)
	require.ErrorIs(t, p.Revoke("127.0.0.1:1/"+c.Beanstalks[0].Tube+"/1"), ErrBadID, "not a node of the config")
	require.ErrorIs(t, p.Revoke(c.Beanstalks[0].Endpoint+"/"+c.Beanstalks[0].Tube+"/x"), ErrBadID)
}

func TestProducerKeepsWritingWithOneOfThreeNodesDead(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	p := openProducer(t, c)
	e.Nodes[0].Kill()

	const jobs = 20
	for range jobs {
		_, err := p.Delay([]byte("x"), time.Hour)
		require.NoError(t, err)
	}
	settle(t, p)
	for _, n := range e.Nodes[1:] {
		require.Equal(t, jobs, countTube(t, n.Addr(), c.Beanstalks[0].Tube).Delayed)
	}
}

func TestProducerMissingQuorumFailsAndLeavesNoOrphanCopy(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	p := openProducer(t, c)
	e.Nodes[0].Kill()
	e.Nodes[1].Kill()

	for range 10 {
		id, err := p.Delay([]byte("x"), time.Hour)
		require.ErrorIs(t, err, ErrQuorum)
		require.Empty(t, id)
		var qe *QuorumError
		require.ErrorAs(t, err, &qe)
		require.Equal(t, 1, qe.Acked)
		require.Equal(t, 2, qe.Needed)
		var failed []string
		for _, ne := range qe.Nodes {
			require.Error(t, ne.Err)
			failed = append(failed, ne.Endpoint)
		}
		require.ElementsMatch(t, []string{e.Nodes[0].Addr(), e.Nodes[1].Addr()}, failed)
		require.Contains(t, err.Error(), e.Nodes[0].Addr())
		// The job can never run: its record says so.
		require.Equal(t, "V", recordOf(t, c, qe.ID)["st"])
	}
	require.Equal(t, tubeCounts{}, countTube(t, e.Nodes[2].Addr(), c.Beanstalks[0].Tube), "no orphan copy")

	// An ID whose enqueue missed the quorum can be enqueued again later.
	ctx := context.Background()
	_, err := p.DelayCtx(ctx, []byte("x"), time.Hour, WithID("retry-me"))
	require.ErrorIs(t, err, ErrQuorum)
	require.NoError(t, e.Nodes[0].Restart())
	dqtest.Eventually(t, 5*time.Second, func() bool {
		id, err := p.DelayCtx(ctx, []byte("x"), time.Hour, WithID("retry-me"))
		return err == nil && id == "retry-me"
	}, "the ID enqueued once the nodes are back")
	settle(t, p)
	for _, n := range []*dqtest.Server{e.Nodes[0], e.Nodes[2]} {
		require.Equal(t, tubeCounts{Delayed: 1}, countTube(t, n.Addr(), c.Beanstalks[0].Tube))
	}
}

func TestProducerNeedsRedisOnlyForWithID(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	p := openProducer(t, c)
	e.Redis.Kill()

	_, err := p.Delay([]byte("x"), time.Hour)
	require.NoError(t, err, "a generated ID needs no Redis")
	start := time.Now()
	_, err = p.DelayCtx(context.Background(), []byte("x"), time.Hour, WithID("needs-redis"))
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrQuorum)
	require.Less(t, time.Since(start), defaultRedisTimeout+time.Second)
	require.Equal(t, 3, countCopies(t, c), "nothing written for the WithID job")
}

func TestProducerGivesEveryJobAllReplicasWhenOneOfFourNodesIsDead(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{Nodes: 4})
	c := testConf(t, e)
	p := openProducer(t, c)
	e.Nodes[3].Kill()

	const jobs = 30
	for range jobs {
		_, err := p.Delay([]byte("x"), time.Hour)
		require.NoError(t, err)
	}
	slots := make(map[string][]int)
	nodes := make(map[string]map[string]bool)
	for _, n := range e.Nodes[:3] {
		for _, cp := range nodeCopies(t, n.Addr()) {
			require.Equal(t, uint8(3), cp.Env.Count)
			slots[cp.Env.ID] = append(slots[cp.Env.ID], int(cp.Env.Slot))
			if nodes[cp.Env.ID] == nil {
				nodes[cp.Env.ID] = make(map[string]bool)
			}
			nodes[cp.Env.ID][cp.Endpoint] = true
		}
	}
	require.Len(t, slots, jobs)
	for id, s := range slots {
		slices.Sort(s)
		require.Equal(t, []int{0, 1, 2}, s, "job %s", id)
		require.Len(t, nodes[id], 3, "job %s on distinct nodes", id)
	}
}

func TestProducerPausedNodeCostsAtMostTheTimeoutAndIsUsedAgainAfterResume(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	p := openProducer(t, c)
	tube := c.Beanstalks[0].Tube
	frozen := e.Nodes[0]

	// Connections to every node exist before the freeze, as in a service
	// that has been running.
	_, err := p.Delay([]byte("warm"), time.Hour)
	require.NoError(t, err)
	require.NoError(t, frozen.Pause())

	limit := c.IOTimeout + 500*time.Millisecond
	for i := range 8 {
		start := time.Now()
		_, err := p.Delay([]byte("x"), time.Hour)
		took := time.Since(start)
		require.NoError(t, err, "delay %d", i)
		require.Less(t, took, limit, "delay %d", i)
	}

	// Puts the frozen node got before timing out land when it wakes. Then
	// new jobs reach it again, without a new producer.
	require.NoError(t, frozen.Resume())
	landed := func() int { return countTube(t, frozen.Addr(), tube).Delayed }
	dqtest.Eventually(t, 5*time.Second, func() bool {
		before := landed()
		_, err := p.Delay([]byte("y"), time.Hour)
		return err == nil && landed() == before+1
	}, "a new job written to the resumed node")
}

func TestProducerUsesARestartedNodeAgain(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	p := openProducer(t, c)
	tube := c.Beanstalks[0].Tube
	n := e.Nodes[1]

	_, err := p.Delay([]byte("warm"), time.Hour)
	require.NoError(t, err)
	n.Kill()
	_, err = p.Delay([]byte("x"), time.Hour)
	require.NoError(t, err)
	require.NoError(t, n.Restart())

	dqtest.Eventually(t, 5*time.Second, func() bool {
		_, err := p.Delay([]byte("y"), time.Hour)
		return err == nil && countTube(t, n.Addr(), tube).Delayed > 0
	}, "a job written to the restarted node")
}

func TestProducerSpillsPastAnUncertainPutAndMarksTheJob(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{Nodes: 4})
	c := testConf(t, e)
	// Several connections per node, so that most puts to the frozen node go
	// on connections dialled while it is frozen: with one, whose requests
	// all went out on the connection opened before the freeze, the node
	// did not always store them once it woke (the producer had closed that
	// connection at its timeout), and there was no uncertain put to watch
	// land.
	p := openProducer(t, c, WithConnsPerNode(4))
	frozen := e.Nodes[3]
	warm, err := p.Delay([]byte("warm"), time.Hour)
	require.NoError(t, err)
	require.NoError(t, frozen.Pause())

	// The first job that picks the frozen node waits for its reply in vain;
	// the node is then skipped for a back-off.
	const jobs = 12
	for range jobs {
		_, err := p.Delay([]byte("x"), time.Hour)
		require.NoError(t, err)
	}
	// Each call returned at its quorum: the spill past the uncertain put
	// follows in the background, once that put timed out.
	dqtest.Eventually(t, 5*time.Second, func() bool {
		copies := 0
		for _, n := range e.Nodes[:3] {
			for _, cp := range nodeCopies(t, n.Addr()) {
				if cp.Env.ID != warm {
					copies++
				}
			}
		}
		return copies == 3*jobs
	}, "three live copies of every job")
	require.NoError(t, frozen.Resume())

	type key struct {
		id   string
		slot uint8
	}
	live := make(map[string]int)
	unc := make(map[string]bool)
	var all []storedCopy
	for _, n := range e.Nodes[:3] {
		for _, cp := range nodeCopies(t, n.Addr()) {
			if cp.Env.ID == warm {
				continue // written before the freeze, maybe on the frozen node
			}
			all = append(all, cp)
			live[cp.Env.ID]++
			if cp.Env.Unc() {
				unc[cp.Env.ID] = true
			}
		}
	}
	require.Len(t, live, jobs)
	for id, n := range live {
		require.Equal(t, 3, n, "job %s keeps 3 live copies", id)
	}
	require.NotEmpty(t, unc, "a spill past an uncertain put is flagged")
	for id := range unc {
		require.Equal(t, "1", recordOf(t, c, id)["unc"], "job %s noted uncertain", id)
	}

	// The uncertain put landed after all, in the slot its spill copy took.
	spilled := make(map[key]bool)
	for _, cp := range all {
		if cp.Env.Unc() {
			spilled[key{cp.Env.ID, cp.Env.Slot}] = true
		}
	}
	var ghosts []storedCopy
	dqtest.Eventually(t, 5*time.Second, func() bool {
		ghosts = ghosts[:0]
		for _, cp := range nodeCopies(t, frozen.Addr()) {
			if unc[cp.Env.ID] {
				ghosts = append(ghosts, cp)
			}
		}
		return len(ghosts) > 0
	}, "the frozen node's put lands once it wakes")
	for _, cp := range ghosts {
		require.False(t, cp.Env.Unc(), "the first put of a job is not flagged")
		require.True(t, spilled[key{cp.Env.ID, cp.Env.Slot}], "ghost of %s shares its slot with the spill copy", cp.Env.ID)
	}
}

func TestProducerQuorumErrorMatchesErrQuorum(t *testing.T) {
	t.Parallel()
	err := error(&QuorumError{ID: "x", Acked: 1, Needed: 2, Nodes: []NodeError{{Endpoint: "a:1", Err: errors.New("boom")}}})
	require.ErrorIs(t, fmt.Errorf("wrapped: %w", err), ErrQuorum)
	require.Contains(t, err.Error(), "a:1: boom")
}

func TestQuorumErrorUnwrapsEveryNodesFailure(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	err := fmt.Errorf("wrapped: %w", &QuorumError{ID: "x", Acked: 1, Needed: 2,
		Nodes: []NodeError{{Endpoint: "a:1", Err: boom}, {Endpoint: "b:2", Err: context.DeadlineExceeded}}})
	require.ErrorIs(t, err, ErrQuorum)
	require.ErrorIs(t, err, boom, "a node's own error")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ne NodeError
	require.ErrorAs(t, err, &ne, "each node's failure is a NodeError")
	require.Equal(t, "a:1", ne.Endpoint)
	require.Equal(t, "a:1: boom", ne.Error())
}
