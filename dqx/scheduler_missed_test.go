package dqx

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An entry changed from a sparse spec to a dense one keeps, as its latest
// recorded fire, the last fire the old spec wrote ahead (hours away), even
// though the takeover revoked it. The missed-fire policy compares against it:
// an outage shorter than that finds "nothing missed" and the MissedRunOnce
// entry silently drops the fires it missed.
func TestMissedRunOnceRunsTheLatestMissedFireAfterTheEntryWasChanged(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	t0 := utc(t, "2026-03-14T02:00:00Z")
	clock := &fixedClock{now: t0}
	p := &fakeProducer{}

	// The old release: hourly, so the window holds the next three hours.
	old := CronConf{Entries: []CronEntry{{Name: "job", Spec: "@every 1h", Body: "old", Missed: MissedRunOnce}}}
	s1, err := NewScheduler(c, old, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s1.Stop()
	require.NoError(t, s1.topUp(context.Background()))
	p.take()

	// The new release starts: every 10 s. It takes over and revokes the
	// hourly fires not yet due.
	cc := CronConf{Entries: []CronEntry{{Name: "job", Spec: "@every 10s", Body: "new", Missed: MissedRunOnce}}}
	clock.set(t0.Add(5 * time.Second))
	s2, err := NewScheduler(c, cc, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s2.Stop()
	require.NoError(t, s2.topUp(context.Background()))
	require.NotEmpty(t, p.revokes, "the takeover revokes the hourly fires ahead")
	written := ats(p.take(), "new")
	require.NotEmpty(t, written)
	lastWritten := written[len(written)-1]

	// Every replica down for 30 minutes: dozens of fires of the new spec
	// were missed, the latest at t0+30m.
	clock.set(t0.Add(30*time.Minute + 5*time.Second))
	s3, err := NewScheduler(c, cc, WithClock(clock), WithProducer(p))
	require.NoError(t, err)
	defer s3.Stop()
	require.NoError(t, s3.topUp(context.Background()))
	var missed []call
	for _, cl := range p.take() {
		if !cl.isAt {
			missed = append(missed, cl)
		}
	}
	require.Equal(t, []call{{body: "new"}}, missed,
		"one run at once for the fires missed after %v (the state's latest fire is %v)",
		lastWritten.UTC(), stateLast(t, c, s3, "job").UTC())
}
