package dqx

import (
	"testing"
	"time"

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
