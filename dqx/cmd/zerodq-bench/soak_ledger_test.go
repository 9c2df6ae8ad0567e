package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLedgerReadsWholeLinesAndKeepsAPartialOneForLater(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "records-7.log")
	require.NoError(t, os.WriteFile(name, []byte("S job1 1 1 7 1000 n1\nD job1 1 1 7 2000 n1\nD job2 2 1"), 0o644))
	l := newLedger(dir)
	require.NoError(t, l.refresh())
	require.Len(t, l.starts[jobKey{"job1", 1}], 1)
	_, done := l.doneAt(jobKey{"job1", 1})
	require.True(t, done)
	_, done = l.doneAt(jobKey{"job2", 2})
	require.False(t, done)

	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(" 7 3000 n2\ngarbage\nX job3 3 1 7 3500 n3\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, l.refresh())
	require.Equal(t, []event{{Kind: "D", ID: "job2", Seq: 2, Attempt: 1, PID: 7, At: time.UnixMicro(3000), Endpoint: "n2"}},
		l.ends[jobKey{"job2", 2}])
	at, done := l.doneAt(jobKey{"job2", 2})
	require.True(t, done)
	require.Equal(t, time.UnixMicro(3000), at)
	_, done = l.doneAt(jobKey{"job3", 3})
	require.False(t, done, "a dead letter is not a completion")
	require.Equal(t, 1, l.deaths())
	require.Equal(t, 1, l.bad)
	require.Zero(t, l.interrupted())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "records-8.log"), []byte("S job4 4 1 8 4000 n1\n"), 0o644))
	require.NoError(t, l.refresh())
	require.Equal(t, 1, l.interrupted(), "a start without its end")
}

func TestLedgerTellsAReenqueuedWithIDFromADouble(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// job-3 enqueued as seq 3, then again as seq 1003 after its record expired.
	lines := "S job-3 3 1 7 1000 n1\nD job-3 3 1 7 2000 n1\nS job-3 1003 1 8 9000 n2\nD job-3 1003 1 8 9100 n2\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "records-7.log"), []byte(lines), 0o644))
	l := newLedger(dir)
	require.NoError(t, l.refresh())
	for _, seq := range []uint64{3, 1003} {
		k := jobKey{"job-3", seq}
		_, done := l.doneAt(k)
		require.True(t, done)
		require.Empty(t, judge(k, l.starts[k], l.ends[k], nil, testTiming).doubles)
	}
}

var testTiming = timing{lease: 5 * time.Second, shutdown: 2 * time.Second, slack: time.Second}

func TestJudgeAttributesEachDoubleToTheFaultThatCausedIt(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const ms = time.Millisecond
	firstStart := event{Kind: "S", ID: "j", Attempt: 1, PID: 10, At: at(-5 * ms), Endpoint: "n1"}
	first := event{Kind: "D", ID: "j", Attempt: 1, PID: 10, At: t0, Endpoint: "n1"}
	secondStart := event{Kind: "S", ID: "j", Attempt: 2, PID: 20, At: at(5990 * ms), Endpoint: "n2"}
	second := event{Kind: "D", ID: "j", Attempt: 2, PID: 20, At: at(6 * time.Second), Endpoint: "n2"}
	outage := func(from, to time.Duration) fault {
		return fault{Kind: faultRedisOutage, Start: at(from), End: at(to)}
	}
	tests := []struct {
		name   string
		faults []fault
		cause  string // "" for unattributed
		detail string
	}{
		{"consumer killed after the run ended", []fault{{Kind: faultConsumerKill, PID: 10, Start: at(2 * ms)}},
			causeInterrupted, "consumer 10 SIGKILLed 2ms after the end of attempt 1"},
		{"consumer killed itself after the run ended", []fault{{Kind: faultConsumerDie, PID: 10, Start: at(time.Millisecond)}},
			causeInterrupted, "SIGKILLed itself"},
		{"another consumer killed", []fault{{Kind: faultConsumerKill, PID: 11, Start: at(2 * ms)}},
			"", "UNATTRIBUTED: ran again after attempt 1 by consumer 10; faults within a lease of that end: consumer-kill"},
		{"consumer killed before the run ended", []fault{{Kind: faultConsumerKill, PID: 10, Start: at(-time.Second)}},
			"", "UNATTRIBUTED"},
		{"consumer killed more than a lease after the run ended", []fault{{Kind: faultConsumerKill, PID: 10, Start: at(5500 * ms)}},
			"", "UNATTRIBUTED"},
		{"SIGTERM and the handler outlived ShutdownTimeout",
			[]fault{{Kind: faultConsumerTerm, PID: 10, Start: at(-2100 * ms), End: at(500 * ms)}},
			causeInterrupted, "SIGTERMed; attempt 1 still ran when Stop cancelled it"},
		{"SIGTERM while the handler ran, but it ended before the cancel: its result stands",
			[]fault{{Kind: faultConsumerTerm, PID: 10, Start: at(-3 * ms), End: at(100 * ms)}},
			"", "UNATTRIBUTED"},
		{"SIGTERM after the run ended", []fault{{Kind: faultConsumerTerm, PID: 10, Start: at(3 * ms), End: at(50 * ms)}},
			"", "UNATTRIBUTED"},
		{"the run ended inside a Redis outage longer than TTR", []fault{outage(-time.Second, 6*time.Second)},
			causeOutage, "ended 1s into a Redis outage of 7s (TTR 5s)"},
		{"the run ended just before a Redis outage longer than TTR", []fault{outage(500*ms, 5800*ms)},
			causeOutage, "ended 500ms before a Redis outage of 5.3s"},
		{"the run ended well before a Redis outage", []fault{outage(2*time.Second, 7500*ms)}, "", "UNATTRIBUTED"},
		{"a Redis outage no longer than TTR", []fault{outage(-time.Second, 4*time.Second)}, "", "UNATTRIBUTED"},
		{"a short Redis restart", []fault{{Kind: faultRedisRestart, Start: at(-100 * ms), End: at(400 * ms)}},
			"", "redis-restart"},
		{"node fault", []fault{{Kind: faultNodeKill, Target: "n1", Start: t0, End: at(time.Second)}}, "", "node-kill n1"},
		{"no fault", nil, "", "UNATTRIBUTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := jobKey{"j", 1}
			v := judge(k, []event{secondStart, firstStart}, []event{second, first}, tt.faults, testTiming)
			require.Zero(t, v.kicked)
			require.Len(t, v.doubles, 1)
			d := v.doubles[0]
			require.Equal(t, tt.cause, d.Cause, d.Detail)
			require.Equal(t, tt.cause != "", d.attributed())
			require.Contains(t, d.Detail, tt.detail)
			require.Equal(t, first, d.Prev, "ends in time order")
			require.Equal(t, second, d.Run)
			require.False(t, d.Overlap)
			if tt.cause != "" {
				require.NotNil(t, d.Fault)
				require.Equal(t, tt.faults[0].Kind, d.Fault.Kind)
			} else {
				require.Nil(t, d.Fault)
			}
		})
	}
}

func TestJudgeExpectsAKickedDeadLetterToRunExactlyOnceMore(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	k := jobKey{"d", 7}
	dead := event{Kind: "X", ID: "d", Seq: 7, Attempt: 1, PID: 10, At: t0, Endpoint: "n1"}
	againStart := event{Kind: "S", ID: "d", Seq: 7, Attempt: 2, PID: 20, At: at(3 * time.Second), Endpoint: "n1"}
	again := event{Kind: "D", ID: "d", Seq: 7, Attempt: 2, PID: 20, At: at(3005 * time.Millisecond), Endpoint: "n1"}
	thirdStart := event{Kind: "S", ID: "d", Seq: 7, Attempt: 3, PID: 30, At: at(4 * time.Second), Endpoint: "n1"}
	third := event{Kind: "D", ID: "d", Seq: 7, Attempt: 3, PID: 30, At: at(4005 * time.Millisecond), Endpoint: "n1"}
	kick := func(kind, ep string, d time.Duration) fault {
		return fault{Kind: kind, Endpoint: ep, Start: at(d), End: at(d)}
	}

	t.Run("kicked on its node", func(t *testing.T) {
		for _, kind := range []string{faultKickBuried, faultFinalKick} {
			v := judge(k, []event{againStart}, []event{again, dead}, []fault{kick(kind, "n1", 2*time.Second)}, testTiming)
			require.Equal(t, 1, v.kicked, kind)
			require.Empty(t, v.doubles, kind)
		}
	})
	t.Run("a kick of another node does not explain it", func(t *testing.T) {
		v := judge(k, []event{againStart}, []event{again, dead}, []fault{kick(faultKickBuried, "n2", 2*time.Second)}, testTiming)
		require.Zero(t, v.kicked)
		require.Len(t, v.doubles, 1)
		require.False(t, v.doubles[0].attributed())
		require.Contains(t, v.doubles[0].Detail, "dead letter ran again without a kick of its node")
	})
	t.Run("a kick before the death does not explain it", func(t *testing.T) {
		v := judge(k, []event{againStart}, []event{again, dead}, []fault{kick(faultKickBuried, "n1", -time.Second)}, testTiming)
		require.Zero(t, v.kicked)
		require.Len(t, v.doubles, 1)
		require.False(t, v.doubles[0].attributed())
	})
	t.Run("a kick runs it once, not twice", func(t *testing.T) {
		v := judge(k, []event{againStart, thirdStart}, []event{third, again, dead},
			[]fault{kick(faultKickBuried, "n1", 2*time.Second)}, testTiming)
		require.Equal(t, 1, v.kicked)
		require.Len(t, v.doubles, 1)
		require.Equal(t, again, v.doubles[0].Prev)
		require.Equal(t, third, v.doubles[0].Run)
		require.False(t, v.doubles[0].attributed())
	})
	t.Run("died and killed before its outcome reached Redis", func(t *testing.T) {
		v := judge(k, []event{againStart}, []event{again, dead},
			[]fault{{Kind: faultConsumerKill, PID: 10, Start: at(time.Millisecond)}}, testTiming)
		require.Zero(t, v.kicked)
		require.Len(t, v.doubles, 1)
		require.Equal(t, causeInterrupted, v.doubles[0].Cause)
	})
}

func TestJudgeFlagsOverlappingRuns(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0)
	first := event{Kind: "D", ID: "j", Attempt: 1, PID: 10, At: t0}
	second := event{Kind: "D", ID: "j", Attempt: 2, PID: 20, At: t0.Add(time.Second)}
	start := event{Kind: "S", ID: "j", Attempt: 2, PID: 20, At: t0.Add(-time.Second)}
	v := judge(jobKey{"j", 1}, []event{start}, []event{first, second}, nil, testTiming)
	require.Len(t, v.doubles, 1)
	require.False(t, v.doubles[0].attributed())
	require.True(t, v.doubles[0].Overlap)
}

func TestEventLinesRoundTrip(t *testing.T) {
	t.Parallel()
	e := event{Kind: "X", ID: "job-3", Seq: 3, Attempt: 1, PID: 42, At: time.UnixMicro(1700000000123456),
		Endpoint: "127.0.0.1:11300"}
	line := formatEvent(e)
	require.Equal(t, "X job-3 3 1 42 1700000000123456 127.0.0.1:11300\n", line)
	got, ok := parseEvent(line[:len(line)-1])
	require.True(t, ok)
	require.Equal(t, e, got)
	_, ok = parseEvent("S job-3 3 1 42 1700000000123456")
	require.False(t, ok, "a line without its node")
}
