package dqx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestEveryTickFiresOnceWhenOwnershipFlipsBackAndForth flips the schedule
// from a config Y to a config X and back to Y (an old replica restarting in
// the middle of a deploy) while Y's first window still reaches far ahead:
// the ticks X took over must not be lost when Y takes them back.
func TestEveryTickFiresOnceWhenOwnershipFlipsBackAndForth(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	y := CronConf{Lookahead: 5 * time.Second, Refresh: 250 * time.Millisecond,
		Entries: []CronEntry{{Name: "a", Spec: "@every 1s", Body: "y"}}}
	x := y
	x.Entries = []CronEntry{{Name: "a", Spec: "@every 1s", Body: "x"}}

	started := time.Now()
	startScheduler(t, c, y)
	from := awaitFirstFire(t, &log, "a", started)
	startScheduler(t, c, x)
	dqtest.Eventually(t, 5*time.Second, func() bool { return log.ranBody("a", "x") }, "x owns the schedule")
	back := time.Now()
	startScheduler(t, c, y)
	to := back.Add(y.Lookahead + 2*time.Second)
	dqtest.Eventually(t, 15*time.Second, func() bool { return log.ran("a", to) }, "fire at %v", to)

	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	requireEverySecondOnce(t, runs, "a", from, to)
}

// TestFiresOfTheReleaseBeforeGenerationsKeepTheirTicks starts a scheduler on
// the state that a replica of the release before fire ID generations left in
// the middle of a rolling upgrade: the ticks that replica wrote, under IDs
// without a generation, run under those IDs and under no other.
func TestFiresOfTheReleaseBeforeGenerationsKeepTheirTicks(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(CronEntry{Name: "tick", Spec: "@every 1s"})
	s, err := NewScheduler(c, cc)
	require.NoError(t, err)
	defer s.Stop()
	e := s.entries[0]

	// What the older replica's last round left: its config as the owner
	// (digested without a scheme), its fires recorded under IDs that were
	// the tag and the time, and enqueued.
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(cc.withDefaults().Name + "\n" + e.tag))
	oldCfg := hex.EncodeToString(sum[:16])
	require.NotEqual(t, oldCfg, s.cfg, "the older release counts as another config")
	now := time.Now()
	require.NoError(t, rds.Hmset(s.state.keys[0], map[string]string{
		"cfg": oldCfg, "cfgt": strconv.FormatInt(now.UnixMilli(), 10)}))
	old := make(map[int64]string)
	for at := now.Truncate(time.Second).Add(2 * time.Second); len(old) < 3; at = at.Add(time.Second) {
		id := e.tag + "-" + strconv.FormatInt(at.UnixMilli(), 10)
		old[at.UnixMilli()] = id
		_, err := rds.Zadd(s.state.keys[1], at.UnixMilli(), id)
		require.NoError(t, err)
		_, err = s.producer.AtCtx(context.Background(), e.body, at, dq.WithID(id),
			dq.WithHeader(TypeHeader, e.Type), dq.WithHeader(CronHeader, e.Name),
			dq.WithHeader(FireHeader, strconv.FormatInt(at.UnixMilli(), 10)))
		require.NoError(t, err)
	}

	r := &runningScheduler{Scheduler: s, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		s.Start()
	}()
	defer r.stop()
	to := now.Truncate(time.Second).Add(8 * time.Second)
	dqtest.Eventually(t, 12*time.Second, func() bool { return log.ran("tick", to) }, "fire at %v", to)

	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	requireEverySecondOnce(t, runs, "tick", now.Truncate(time.Second).Add(2*time.Second), to)
	for _, r := range runs {
		if id, ok := old[r.at.UnixMilli()]; ok {
			require.Equal(t, id, r.id, "the older release's fire keeps its tick")
		}
	}
}
