package dqx

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// A fire stays in the pending set when the replica that wrote it could not
// note it written: killed in between, or its 3 s write bound spent before
// the note. The next top-up writes every pending fire that came due "at
// once", for up to ten minutes, trusting dq.WithID to collapse it into the
// job already run. That holds only while the job's record lives, i.e. for
// DedupeTTL past its due time; a DedupeTTL shorter than the scheduler's
// retention (any of 1s..10m, all accepted) lets the fire run a second time.
func TestEachTickRunsOnceWhenDedupeTTLIsShorterThanFireRetention(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.DedupeTTL = time.Second
	c.TTR = 3 * time.Second // the lease: a record outlives it by DedupeTTL
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(CronEntry{Name: "job", Spec: "@every 1s", Body: "a"})

	s := startScheduler(t, c, cc)
	first := awaitFirstFire(t, &log, "job", time.Now())
	s.stop()
	var id string
	for _, r := range log.snapshot() {
		if r.at.Equal(first) {
			id = r.id
		}
	}
	require.NotEmpty(t, id)

	// The replica that wrote the fire died before noting it written.
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	_, err = rds.Zadd(s.state.keys[3], first.UnixMilli(), id)
	require.NoError(t, err)
	key := c.KeyPrefix + ":" + c.QueueName() + ":" + id
	dqtest.Eventually(t, 10*time.Second, func() bool {
		n, err := rds.Exists(key)
		return err == nil && !n
	}, "the record of fire %s to expire", id)

	// A replica starts again, well within the ten minutes.
	since := time.Now()
	startScheduler(t, c, cc)
	next := awaitFirstFire(t, &log, "job", since)
	awaitFirstFire(t, &log, "job", next)
	requireNoFireTwice(t, log.snapshot())
}

// The same fire, left pending by the replica that wrote it, is doomed when a
// changed entry takes over. Its revoke finds no record (it expired after the
// fire ran) and answers dq.ErrMaybeDone, which must not be read as "never
// written": the tick would run again under the new entry.
func TestChangedEntryDoesNotRunAgainAFireWhoseRecordExpired(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.DedupeTTL = time.Second
	c.TTR = 3 * time.Second
	var log fireLog
	startConsumer(t, c, log.handler())

	s := startScheduler(t, c, everySecond(CronEntry{Name: "job", Spec: "@every 1s", Body: "a"}))
	first := awaitFirstFire(t, &log, "job", time.Now())
	s.stop()
	var id string
	for _, r := range log.snapshot() {
		if r.at.Equal(first) {
			id = r.id
		}
	}
	require.NotEmpty(t, id)

	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	_, err = rds.Zadd(s.state.keys[3], first.UnixMilli(), id)
	require.NoError(t, err)
	key := c.KeyPrefix + ":" + c.QueueName() + ":" + id
	dqtest.Eventually(t, 10*time.Second, func() bool {
		n, err := rds.Exists(key)
		return err == nil && !n
	}, "the record of fire %s to expire", id)

	// The entry changes.
	since := time.Now()
	startScheduler(t, c, everySecond(CronEntry{Name: "job", Spec: "@every 1s", Body: "b"}))
	dqtest.Eventually(t, 10*time.Second, func() bool { return log.ranBody("job", "b") }, "the new entry runs")
	awaitFirstFire(t, &log, "job", awaitFirstFire(t, &log, "job", since))
	requireNoFireTwice(t, log.snapshot())
}
