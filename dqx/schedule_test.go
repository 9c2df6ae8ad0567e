package dqx

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustParse(t *testing.T, spec, tz string) schedule {
	t.Helper()
	s, err := parseSpec(spec, tz)
	require.NoError(t, err, "spec %q tz %q", spec, tz)
	return s
}

func testEntry(t *testing.T, ce CronEntry) *entry {
	t.Helper()
	return newEntry("test", ce, mustParse(t, ce.Spec, ce.TimeZone))
}

// utc parses an RFC 3339 time, for readable expectations.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return v
}

func fires(t *testing.T, s schedule, from time.Time, n int) []time.Time {
	t.Helper()
	var out []time.Time
	for f := s.next(from); len(out) < n; f = s.next(f) {
		require.False(t, f.IsZero())
		out = append(out, f.UTC())
	}
	return out
}

func TestSpecsFireAtTheWallClockInstantsOfTheirZone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, spec, tz, from string
		want                 []string
	}{{
		name: "seconds field, read in UTC by default",
		spec: "*/15 * * * * *", from: "2026-03-14T01:59:58.5Z",
		want: []string{"2026-03-14T02:00:00Z", "2026-03-14T02:00:15Z", "2026-03-14T02:00:30Z"},
	}, {
		name: "seconds field with a fixed second",
		spec: "7 * * * * *", from: "2026-03-14T02:00:07Z",
		want: []string{"2026-03-14T02:01:07Z", "2026-03-14T02:02:07Z"},
	}, {
		name: "five fields fire on the minute",
		spec: "*/20 * * * *", from: "2026-03-14T02:00:00Z",
		want: []string{"2026-03-14T02:20:00Z", "2026-03-14T02:40:00Z"},
	}, {
		name: "02:00 in Asia/Shanghai from TimeZone",
		spec: "0 0 2 * * *", tz: "Asia/Shanghai", from: "2026-03-13T17:59:59Z",
		want: []string{"2026-03-13T18:00:00Z", "2026-03-14T18:00:00Z"},
	}, {
		name: "CRON_TZ prefix",
		spec: "CRON_TZ=Asia/Shanghai 30 2 * * *", from: "2026-03-13T18:00:00Z",
		want: []string{"2026-03-13T18:30:00Z", "2026-03-14T18:30:00Z"},
	}, {
		name: "09:00 in New York across the start of daylight saving time",
		spec: "0 0 9 * * *", tz: "America/New_York", from: "2026-03-07T00:00:00Z",
		want: []string{"2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"},
	}, {
		name: "descriptor in a zone",
		spec: "@daily", tz: "Asia/Tokyo", from: "2026-03-14T00:00:00Z",
		want: []string{"2026-03-14T15:00:00Z", "2026-03-15T15:00:00Z"},
	}, {
		name: "@every is aligned to the epoch, not to the caller's moment",
		spec: "@every 1s", from: "2026-03-14T02:00:00.4Z",
		want: []string{"2026-03-14T02:00:01Z", "2026-03-14T02:00:02Z"},
	}, {
		name: "@every ignores the zone",
		spec: "@every 1h", tz: "Asia/Kolkata", from: "2026-03-14T02:10:00Z",
		want: []string{"2026-03-14T03:00:00Z", "2026-03-14T04:00:00Z"},
	}, {
		name: "@every with milliseconds",
		spec: "@every 1500ms", from: "1970-01-01T00:00:01Z",
		want: []string{"1970-01-01T00:00:01.5Z", "1970-01-01T00:00:03Z"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var want []time.Time
			for _, w := range tt.want {
				want = append(want, utc(t, w))
			}
			got := fires(t, mustParse(t, tt.spec, tt.tz), utc(t, tt.from), len(want))
			require.Equal(t, want, got)
		})
	}
}

func TestEveryScheduleAgreesWhateverMomentItIsAskedAt(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "@every 7s", "")
	base := utc(t, "2026-03-14T02:00:00Z")
	first := s.next(base)
	for _, off := range []time.Duration{0, time.Millisecond, 3 * time.Second, first.Sub(base) - time.Nanosecond} {
		require.Equal(t, first, s.next(base.Add(off)), "asked at +%v", off)
	}
	require.Zero(t, first.UnixMilli()%7000)
}

func TestParseSpecRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	tests := []struct{ spec, tz, want string }{
		{"", "", "empty spec"},
		{"   ", "", "empty spec"},
		{"@every 500ms", "", "shorter than"},
		{"@every 1s 2s", "", "one duration"},
		{"@every 1.5us", "", "shorter than"},
		{"@every 1000000001ns", "", "whole milliseconds"},
		{"@every soon", "", "invalid duration"},
		{"CRON_TZ=Nowhere/Land * * * * *", "", "time zone"},
		{"* * * * *", "Nowhere/Land", "time zone"},
		{"CRON_TZ=UTC", "", "nothing after"},
		{"TZ= * * * * *", "", "empty time zone"},
		{"CRON_TZ=UTC * * * * *", "UTC", "both"},
		{"61 * * * * *", "", "above maximum"},
		{"* * *", "", "expected"},
		{"@fortnightly", "", "unrecognized descriptor"},
	}
	for _, tt := range tests {
		_, err := parseSpec(tt.spec, tt.tz)
		require.ErrorContains(t, err, tt.want, "spec %q tz %q", tt.spec, tt.tz)
	}
}

func TestWindowHoldsTheLookaheadAndAtLeastThreeFires(t *testing.T) {
	t.Parallel()
	now := utc(t, "2026-03-14T02:00:00Z")

	every := testEntry(t, CronEntry{Name: "e", Spec: "@every 10s"})
	w := every.window(now, 35*time.Second)
	require.Equal(t, []time.Time{now, now.Add(10 * time.Second), now.Add(20 * time.Second),
		now.Add(30 * time.Second)}, utcAll(w), "a fire exactly at now is part of the window")

	daily := testEntry(t, CronEntry{Name: "d", Spec: "@daily"})
	w = daily.window(now, time.Minute)
	require.Equal(t, []time.Time{utc(t, "2026-03-15T00:00:00Z"), utc(t, "2026-03-16T00:00:00Z"),
		utc(t, "2026-03-17T00:00:00Z")}, utcAll(w))

	fast := testEntry(t, CronEntry{Name: "f", Spec: "@every 1s"})
	require.Len(t, fast.window(now, 24*time.Hour), maxWindowFires)
}

func utcAll(ts []time.Time) []time.Time {
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = t.UTC()
	}
	return out
}

func TestLatestMissedIsTheLastFireBeforeNow(t *testing.T) {
	t.Parallel()
	every := testEntry(t, CronEntry{Name: "e", Spec: "@every 1s"})
	last := utc(t, "2026-03-14T02:00:00Z")

	f, ok := every.latestMissed(last, last.Add(5500*time.Millisecond))
	require.True(t, ok)
	require.Equal(t, last.Add(5*time.Second), f.UTC())

	f, ok = every.latestMissed(last, last.Add(5*time.Second))
	require.True(t, ok)
	require.Equal(t, last.Add(4*time.Second), f.UTC(), "a fire at now belongs to the window")

	_, ok = every.latestMissed(last, last.Add(time.Second))
	require.False(t, ok, "nothing lies strictly between last and the next fire")

	daily := testEntry(t, CronEntry{Name: "d", Spec: "0 0 2 * * *", TimeZone: "Asia/Shanghai"})
	f, ok = daily.latestMissed(utc(t, "2026-01-01T00:00:00Z"), utc(t, "2026-03-14T03:00:00Z"))
	require.True(t, ok)
	require.Equal(t, utc(t, "2026-03-13T18:00:00Z"), f.UTC(), "a long outage still finds the latest fire")

	_, ok = daily.latestMissed(utc(t, "2026-03-13T18:00:00Z"), utc(t, "2026-03-14T17:59:59Z"))
	require.False(t, ok)
}

func TestFireIDsAreValidJobIDsAndChangeWithTheEntry(t *testing.T) {
	t.Parallel()
	base := CronEntry{Name: strings.Repeat("n", maxEntryName), Spec: "@every 1s", Body: "b"}
	e := testEntry(t, base)
	at := utc(t, "2262-01-01T00:00:00Z")
	// The longest ID the recording script can hand out: any generation.
	id := e.tag + "." + strconv.FormatUint(math.MaxUint64, 10) + "-" + strconv.FormatInt(at.UnixMilli(), 10)
	require.LessOrEqual(t, len(id), 200)
	require.Equal(t, e.tag, fireTag(id))
	require.Equal(t, e.tag, fireTag(e.tag+"-"+strconv.FormatInt(at.UnixMilli(), 10)), "an ID without generation")
	for i := 0; i < len(id); i++ {
		c := id[i]
		require.True(t, c > ' ' && c <= '~' && c != '/' && c != '{' && c != '}', "byte %d of %q", i, id)
	}
	require.Equal(t, e.tag, testEntry(t, base).tag, "the same entry derives the same tag")

	for _, change := range []func(*CronEntry){
		func(c *CronEntry) { c.Spec = "@every 2s" },
		func(c *CronEntry) { c.TimeZone = "UTC" },
		func(c *CronEntry) { c.Body = "c" },
		func(c *CronEntry) { c.Type = "t" },
	} {
		ce := base
		change(&ce)
		require.NotEqual(t, e.tag, testEntry(t, ce).tag)
	}
	other := newEntry("other", base, e.sched)
	require.NotEqual(t, e.tag, other.tag, "schedulers of different names never share fires")
	missed := base
	missed.Missed = MissedRunOnce
	require.Equal(t, e.tag, testEntry(t, missed).tag, "the missed policy does not change the jobs")
	for _, bad := range []string{"", "cron-", "cron-x", "cron-a-abcd1234-x", "cron-a-abcd1234.5-"} {
		require.Empty(t, fireTag(bad), bad)
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"*/15 * * * * *", "0 0 2 * * *", "@every 1s", "CRON_TZ=Asia/Shanghai @daily",
		"TZ=", "@every", "1-5/2 * * JAN-MAR MON-FRI", "? * * * * *"} {
		f.Add(s, "")
	}
	f.Add("0 0 2 * * *", "America/New_York")
	from := time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec, tz string) {
		s, err := parseSpec(spec, tz)
		if err != nil {
			return
		}
		if n := s.next(from); !n.IsZero() && !n.After(from) {
			t.Fatalf("spec %q: next(%v) = %v, not after", spec, from, n)
		}
	})
}
