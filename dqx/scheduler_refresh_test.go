package dqx

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
