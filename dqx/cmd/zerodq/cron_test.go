package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dqx"
	"github.com/zerodq/zerodq/internal/dqtest"
)

const cronEntries = "    - { Name: tick, Spec: '@every 1s' }\n" +
	"    - { Name: nightly, Spec: '0 30 2 * * *', TimeZone: Asia/Shanghai, Missed: once }\n"

// startScheduler runs the bundle's cron schedule and a consumer of its fires
// until the test ends, and waits for a first fire to run.
func (b *bundle) startScheduler(t *testing.T) *runs {
	t.Helper()
	ran := b.startConsumer(t, func(context.Context, string) error { return nil })
	s, err := dqx.NewScheduler(b.conf, b.cron)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Start()
	}()
	t.Cleanup(func() {
		s.Stop()
		wg.Wait()
	})
	dqtest.Eventually(t, 10*time.Second, func() bool {
		ran.mu.Lock()
		defer ran.mu.Unlock()
		return len(ran.n) > 0
	}, "a first fire ran")
	return ran
}

func TestCronLsShowsEntriesAndTheOwner(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cron: cronEntries})
	b.startScheduler(t)

	var v cronLsView
	b.zerodq(t, "cron", "ls", "--json").ok(t).decode(t, &v)
	require.Equal(t, "cron", v.Owner.Schedule)
	require.Equal(t, b.conf.Beanstalks[0].Tube, v.Owner.Queue)
	require.True(t, v.Owner.Owns)
	require.True(t, v.Owner.Alive)
	require.Equal(t, v.Owner.Config, v.Owner.Owner)
	require.Len(t, v.Entries, 2)
	require.Equal(t, "tick", v.Entries[0].Name)
	require.Equal(t, "@every 1s", v.Entries[0].Spec)
	require.Equal(t, "UTC", v.Entries[0].Zone)
	require.Equal(t, dqx.MissedSkip, v.Entries[0].Missed)
	require.False(t, v.Entries[0].LastFire.IsZero())
	require.Positive(t, v.Entries[0].Ahead)
	require.Equal(t, "nightly", v.Entries[1].Name)
	require.Equal(t, "Asia/Shanghai", v.Entries[1].Zone)
	require.Equal(t, dqx.MissedRunOnce, v.Entries[1].Missed)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	next := v.Entries[1].NextFire.In(shanghai)
	require.Equal(t, []int{2, 30, 0}, []int{next.Hour(), next.Minute(), next.Second()})

	r := b.zerodq(t, "cron", "ls").ok(t)
	require.Contains(t, r.stdout, "owned by this config")
	for _, col := range []string{"NAME", "SPEC", "ZONE", "MISSED", "LAST", "NEXT", "AHEAD", "PENDING"} {
		require.Contains(t, r.stdout, col)
	}
	require.Contains(t, r.stdout, "Asia/Shanghai")
	require.Regexp(t, `nightly\s+0 30 2 \* \* \*\s+Asia/Shanghai\s+once`, r.stdout)
	require.Contains(t, r.stdout, "02:30:00 CST")
}

func TestCronNextShowsWhichComingFiresAreWritten(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cron: cronEntries})
	b.startScheduler(t)

	var v cronNextView
	b.zerodq(t, "cron", "next", "tick", "-n", "20", "--past", "0", "--json").ok(t).decode(t, &v)
	require.Len(t, v.Next, 20)
	require.Empty(t, v.Past)
	require.True(t, v.Next[0].Written, "the next fire is written")
	require.True(t, strings.HasPrefix(v.Next[0].ID, "cron-tick-"), v.Next[0].ID)
	require.False(t, v.Next[19].Written, "a fire 20 s ahead is beyond the 1 s window")
	require.Empty(t, v.Next[19].ID)
	for i := 1; i < len(v.Next); i++ {
		require.Equal(t, time.Second, v.Next[i].At.Sub(v.Next[i-1].At))
	}

	r := b.zerodq(t, "cron", "next", "nightly", "-n", "3", "--past", "0").ok(t)
	require.Contains(t, r.stdout, "NEXT")
	require.Contains(t, r.stdout, "WRITTEN")
	require.Equal(t, 3, strings.Count(r.stdout, "02:30:00 CST"))
	require.Equal(t, 3, strings.Count(r.stdout, "cron-nightly-"), "a daily entry has its next three fires written")

	b.zerodq(t, "cron", "next", "nope").failed(t, exitFail, `"nope"`, "no such cron entry")
}

func TestCronNextShowsPastFiresRanOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cron: cronEntries})
	ran := b.startScheduler(t)
	dqtest.Eventually(t, 10*time.Second, func() bool {
		ran.mu.Lock()
		defer ran.mu.Unlock()
		return len(ran.n) >= 3
	}, "three fires ran")

	var v cronNextView
	b.zerodq(t, "cron", "next", "tick", "-n", "1", "--past", "5", "--json").ok(t).decode(t, &v)
	require.NotEmpty(t, v.Past)
	once := 0
	for _, p := range v.Past {
		require.NotEmpty(t, p.ID)
		require.NotNil(t, p.Job, "fire %s", p.ID)
		if ran.of(p.ID) == 1 && p.Verdict == dqx.FireRanOnce {
			once++
		}
	}
	require.GreaterOrEqual(t, once, 2)
	r := b.zerodq(t, "cron", "next", "tick", "-n", "1").ok(t)
	require.Contains(t, r.stdout, "PAST")
	require.Contains(t, r.stdout, dqx.FireRanOnce)
}
