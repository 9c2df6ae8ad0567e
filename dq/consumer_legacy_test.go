package dq

import (
	"context"
	"errors"
	"fmt"
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

// putLegacy writes a go-queue body ("<unixnano>/<body>") due now to the first
// n nodes of c, as go-queue's producer does, and returns the raw body. Its
// go-queue lock is deleted when the test ends.
func putLegacy(t *testing.T, c DqConf, n int, body string) []byte {
	t.Helper()
	return putLegacyLocked(t, c, n, body, "")
}

// putLegacyLocked is putLegacy with go-queue's lock of the body set to lock
// first (unless empty), as the consumer that took it would have.
func putLegacyLocked(t *testing.T, c DqConf, n int, body, lock string) []byte {
	t.Helper()
	raw := []byte(fmt.Sprintf("%d/%s %s", time.Now().UnixNano(), dqtest.Name(t), body))
	rds := redis.MustNewRedis(c.Redis)
	t.Cleanup(func() { _, _ = rds.Del(envelope.LegacyLockKey(raw)) })
	if lock != "" {
		require.NoError(t, rds.Setex(envelope.LegacyLockKey(raw), lock, 3600))
	}
	for _, b := range c.Beanstalks[:n] {
		putRaw(t, b, raw)
	}
	return raw
}

func TestConsumerRetriesAFailedLegacyJobUntilItSucceeds(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.RetryBackoff = 50 * time.Millisecond
	c.MaxRetryBackoff = 100 * time.Millisecond
	l := newLedger()
	var runs atomic.Int32
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		if runs.Add(1) == 1 {
			return errors.New("not yet")
		}
		return nil
	}))
	raw := putLegacy(t, c, 2, "fails once")
	id := envelope.LegacyID(raw)
	dqtest.Eventually(t, 15*time.Second, func() bool { return l.doneCount(id) == 1 }, "the retry ran and succeeded")
	awaitNoCopies(t, c, 10*time.Second, "both copies deleted")
	l.mu.Lock()
	require.Equal(t, []int{1, 2}, l.attempts[id])
	l.mu.Unlock()
}

func TestConsumerTakesALegacyLockHeldByAnOlderZerodqAsItsOwn(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	// An older zerodq wrote its claim id, then failed or was killed.
	raw := putLegacyLocked(t, c, 1, "locked by an older zerodq", claim.NewClaimID())
	id := envelope.LegacyID(raw)
	dqtest.Eventually(t, 15*time.Second, func() bool { return l.doneCount(id) == 1 }, "the job ran")
	awaitNoCopies(t, c, 10*time.Second, "its copy deleted")
}

func TestConsumerTakesALegacyLockHeldByGoQueueForARun(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	// go-queue's consumer holds its lock with go-zero's RedisLock id.
	raw := putLegacyLocked(t, c, 2, "run by go-queue", "Qm3xT8kLp2Zw9RcV")
	awaitNoCopies(t, c, 15*time.Second, "both copies deleted as done")
	_, _, _, buried := countJobs(t, c)
	require.Zero(t, buried)
	l.mu.Lock()
	require.Zero(t, l.starts[envelope.LegacyID(raw)], "a job go-queue ran does not run again")
	l.mu.Unlock()
}

// Revoking a go-queue job takes go-queue's lock with a value that no zerodq
// attempt takes for its own: a copy that shows up once the revoked record is
// gone (a node frozen past DedupeTTL) still does not run while the lock
// lives.
func TestConsumerDoesNotRunARevokedLegacyJobOnceItsRecordIsGone(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	node0 := c.Beanstalks[0]
	raw := []byte(fmt.Sprintf("%d/%s revoked", time.Now().UnixNano(), dqtest.Name(t)))
	rds := redis.MustNewRedis(c.Redis)
	t.Cleanup(func() { _, _ = rds.Del(envelope.LegacyLockKey(raw)) })
	conn := dialNode(t, node0.Endpoint)
	jid, err := (&beanstalk.Tube{Conn: conn, Name: node0.Tube}).Put(raw, 1, time.Hour, time.Minute)
	require.NoError(t, err)
	p := openProducer(t, c)
	require.NoError(t, p.Revoke(fmt.Sprintf("%s/%s/%d", node0.Endpoint, node0.Tube, jid)))
	id := envelope.LegacyID(raw)
	require.Equal(t, "V", recordOf(t, c, id)["st"])

	// The record expires; a copy of the job written before the revoke
	// comes back from another node.
	_, err = rds.Del(c.KeyPrefix + ":" + c.claimTube() + ":" + id)
	require.NoError(t, err)
	putRaw(t, c.Beanstalks[1], raw)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	awaitNoCopies(t, c, 15*time.Second, "the late copy deleted")
	l.mu.Lock()
	require.Zero(t, l.starts[id], "a revoked go-queue job does not run")
	l.mu.Unlock()
}
