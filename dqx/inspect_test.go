package dqx

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

func newCronInspector(t *testing.T, c dq.DqConf, cc CronConf, opts ...CronInspectorOption) *CronInspector {
	t.Helper()
	ci, err := NewCronInspector(c, cc, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ci.Close()) })
	return ci
}

func TestCronInspectorShowsTheOwnerAndEachEntrysLatestFire(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(
		CronEntry{Name: "tick", Spec: "@every 1s"},
		CronEntry{Name: "nightly", Spec: "0 30 2 * * *", TimeZone: "Asia/Shanghai", Missed: MissedRunOnce},
	)
	started := time.Now()
	startScheduler(t, c, cc)
	awaitFirstFire(t, &log, "tick", started)

	ci := newCronInspector(t, c, cc)
	ctx := context.Background()
	owner, err := ci.Owner(ctx)
	require.NoError(t, err)
	require.Equal(t, "cron", owner.Schedule)
	require.Equal(t, c.Beanstalks[0].Tube, owner.Queue)
	require.True(t, owner.Owns, "the running config owns the schedule")
	require.Equal(t, owner.Config, owner.Owner)
	require.True(t, owner.Alive)
	require.Equal(t, 3*cc.Refresh, owner.StaleAfter)
	require.WithinDuration(t, time.Now(), owner.ToppedUp, 5*time.Second)
	require.Positive(t, owner.Generation)

	entries, err := ci.Entries(ctx)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	tick, nightly := entries[0], entries[1]
	require.Equal(t, "tick", tick.Name)
	require.Equal(t, "@every 1s", tick.Spec)
	require.Equal(t, "UTC", tick.Zone)
	require.Equal(t, MissedSkip, tick.Missed)
	require.Equal(t, CronType("tick"), tick.Type)
	require.False(t, tick.LastFire.IsZero(), "the window's latest fire is recorded")
	require.True(t, tick.LastFire.After(time.Now()), "the latest recorded fire is ahead")
	// A top-up writes three fires at least, at most a Refresh ago: one of
	// them may have come due since.
	require.GreaterOrEqual(t, tick.Ahead, minFires-1)

	require.Equal(t, "Asia/Shanghai", nightly.Zone)
	require.Equal(t, MissedRunOnce, nightly.Missed)
	require.Equal(t, 2, nightly.NextFire.Hour())
	require.Equal(t, 30, nightly.NextFire.Minute())
	require.Equal(t, "Asia/Shanghai", nightly.NextFire.Location().String())
	require.Equal(t, minFires, nightly.Ahead, "a daily entry has its next three fires written")
	require.Zero(t, nightly.Pending)

	other := newCronInspector(t, c, everySecond(CronEntry{Name: "tick", Spec: "@every 2s"}))
	owner, err = other.Owner(ctx)
	require.NoError(t, err)
	require.False(t, owner.Owns, "a config with a changed entry does not own the schedule")
	require.NotEqual(t, owner.Config, owner.Owner)
}

func TestCronInspectorNextTellsWhichComingFiresAreWritten(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(CronEntry{Name: "tick", Spec: "@every 1s"})
	started := time.Now()
	startScheduler(t, c, cc)
	awaitFirstFire(t, &log, "tick", started)

	ci := newCronInspector(t, c, cc)
	fires, err := ci.Next(context.Background(), "tick", 30)
	require.NoError(t, err)
	require.Len(t, fires, 30)
	written := 0
	for i, f := range fires {
		require.Equal(t, "tick", f.Entry)
		require.Zero(t, f.At.UnixMilli()%1000, "an @every 1s fire is on a whole second")
		if i > 0 {
			require.Equal(t, time.Second, f.At.Sub(fires[i-1].At))
		}
		require.False(t, f.OtherVersion)
		if f.Written {
			written++
			require.Equal(t, i, written-1, "the written fires are the first ones")
			require.Equal(t, fireTag(f.ID), ci.entries[0].tag)
			require.Equal(t, f.At.UnixMilli(), mustFireMs(t, f.ID))
		}
	}
	require.GreaterOrEqual(t, written, 2, "the window ahead is written")
	require.False(t, fires[29].Written, "a fire 30 s ahead is beyond a 1 s window")
	require.Empty(t, fires[29].ID)

	_, err = ci.Next(context.Background(), "nope", 3)
	require.ErrorIs(t, err, ErrNoCronEntry)
}

func TestCronInspectorShowsFiresInTheirZoneWithoutAScheduler(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	pinned := time.Date(2030, 3, 1, 1, 0, 0, 0, shanghai)
	cc := CronConf{Entries: []CronEntry{{Name: "nightly", Spec: "CRON_TZ=Asia/Shanghai 0 0 2 * * *"}}}
	ci := newCronInspector(t, c, cc, WithInspectorClock(ClockFunc(func() time.Time { return pinned })))

	fires, err := ci.Next(context.Background(), "nightly", 3)
	require.NoError(t, err)
	require.Len(t, fires, 3)
	for i, f := range fires {
		want := time.Date(2030, 3, 1+i, 2, 0, 0, 0, shanghai)
		require.True(t, want.Equal(f.At), "fire %d at %v, want %v", i, f.At, want)
		require.Equal(t, "Asia/Shanghai", f.At.Location().String())
		require.False(t, f.Written, "no scheduler ran")
		require.Empty(t, f.ID)
	}
	owner, err := ci.Owner(context.Background())
	require.NoError(t, err)
	require.Empty(t, owner.Owner)
	require.False(t, owner.Owns)
	require.False(t, owner.Alive)
	past, err := ci.Past(context.Background(), "nightly", 10)
	require.NoError(t, err)
	require.Empty(t, past, "nothing recorded, no window")
}

func TestCronInspectorPastShowsEachFireRanOnce(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	cc := everySecond(CronEntry{Name: "tick", Spec: "@every 1s"})
	started := time.Now()
	startScheduler(t, c, cc)
	first := awaitFirstFire(t, &log, "tick", started)
	dqtest.Eventually(t, 10*time.Second, func() bool { return log.ran("tick", first.Add(3*time.Second)) },
		"four fires")

	ci := newCronInspector(t, c, cc)
	past, err := ci.Past(context.Background(), "tick", 0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(past), 3)
	ran := 0
	for i, p := range past {
		if i > 0 {
			require.True(t, p.At.Before(past[i-1].At), "newest first")
		}
		require.NotEmpty(t, p.ID, "fire at %v has an ID", p.At)
		require.True(t, p.Written)
		require.NotNil(t, p.Job)
		require.Equal(t, p.ID, p.Job.ID)
		if log.ran("tick", p.At) && count(log.snapshot(), "tick", p.At) == 1 {
			if p.Verdict == FireRanOnce {
				ran++
				require.Equal(t, dq.StateDone, p.Job.State)
			}
		}
		require.Contains(t, []string{FireRanOnce, FireNotYet}, p.Verdict)
	}
	require.GreaterOrEqual(t, ran, 2, "the fires that ran show it")
}

// mustFireMs reads the fire time of a fire ID.
func mustFireMs(t *testing.T, id string) int64 {
	t.Helper()
	i := len(id) - 1
	for i >= 0 && id[i] >= '0' && id[i] <= '9' {
		i--
	}
	var ms int64
	for _, ch := range id[i+1:] {
		ms = ms*10 + int64(ch-'0')
	}
	require.Positive(t, ms, "fire ID %s ends in its time", id)
	return ms
}
