package dqx

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// An owner counts as gone once it has not topped up for three of the
// *checking* replica's Refresh periods. A newer release that also changed
// Refresh to something longer than three of the older release's is taken
// for gone between its own top-ups: the older replica, still running in a
// rolling deploy, takes the schedule back, revokes the newer entries' fires
// as stale, and the newer config then finds the schedule busy and stops
// writing. The newer entry stops firing while its scheduler runs.
func TestOlderConfigStopsWritingWhenANewerWithALongerRefreshStarts(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	v1 := everySecond(CronEntry{Name: "a", Spec: "@every 1s", Body: "v1"}) // Refresh 250ms
	v2 := CronConf{Entries: []CronEntry{{Name: "a", Spec: "@every 1s", Body: "v2"}},
		Lookahead: 4 * time.Second, Refresh: 2 * time.Second}

	started := time.Now()
	startScheduler(t, c, v1) // an old replica, still running during a rolling deploy
	dqtest.Eventually(t, 5*time.Second, func() bool { return log.ran("a", started) }, "v1 runs")
	startScheduler(t, c, v2)
	switched := time.Now()
	owned := time.Time{}
	dqtest.Eventually(t, 6*time.Second, func() bool {
		for _, r := range log.snapshot() {
			if r.body == "v2" {
				owned = r.at
				return true
			}
		}
		return false
	}, "v2 runs")
	until := owned.Add(6 * time.Second)
	dqtest.Eventually(t, 10*time.Second, func() bool { return log.ran("a", until) }, "fires up to %v", until)

	for _, r := range log.snapshot() {
		if !r.at.Before(owned) && !r.at.After(until) {
			require.Equal(t, "v2", r.body, "the newer config (started %v) owns the schedule: %+v", switched, r)
		}
	}
	requireEverySecondOnce(t, log.snapshot(), "a", owned, until)
}

// A state written by a release that stores no stale-after of its own keeps
// the rule of that release: its owner is judged by the checking replica's
// Refresh, also when a newer owner's stale-after is still in the hash.
func TestOwnerWithoutAStoredStaleAfterIsJudgedByTheCheckersRefresh(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	t0 := time.UnixMilli(1_800_000_000_000)
	slow := CronConf{Entries: []CronEntry{{Name: "a", Spec: "@every 1s"}},
		Lookahead: time.Minute, Refresh: 20 * time.Second} // stale after 60s
	fast := CronConf{Entries: []CronEntry{{Name: "a", Spec: "@every 1s", Body: "x"}},
		Lookahead: time.Minute, Refresh: time.Second} // stale after 3s
	s1, err := NewScheduler(c, slow, WithProducer(&fakeProducer{}))
	require.NoError(t, err)
	defer s1.Stop()
	s2, err := NewScheduler(c, fast, WithProducer(&fakeProducer{}))
	require.NoError(t, err)
	defer s2.Stop()
	ctx := context.Background()

	res, err := s1.state.sync(ctx, s1.cfg, t0, true, s1.entries)
	require.NoError(t, err)
	require.False(t, res.busy)
	res, err = s2.state.sync(ctx, s2.cfg, t0.Add(10*time.Second), false, s2.entries)
	require.NoError(t, err)
	require.True(t, res.busy, "the owner stays for three of its own Refresh periods")

	// A replica of the release before stale-afters takes over: it writes
	// cfg and cfgt only.
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	require.NoError(t, rds.Hmset(s1.state.keys[0], map[string]string{
		"cfg": "0123456789abcdef0123456789abcdef", "cfgt": strconv.FormatInt(t0.Add(11*time.Second).UnixMilli(), 10)}))
	res, err = s2.state.sync(ctx, s2.cfg, t0.Add(13*time.Second), false, s2.entries)
	require.NoError(t, err)
	require.True(t, res.busy, "within the checker's 3s")
	res, err = s2.state.sync(ctx, s2.cfg, t0.Add(15*time.Second), false, s2.entries)
	require.NoError(t, err)
	require.False(t, res.busy, "past the checker's 3s, not the 60s stored for another config")
}
