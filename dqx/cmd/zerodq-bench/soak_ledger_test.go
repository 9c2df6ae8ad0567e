package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLedgerReadsWholeLinesAndKeepsAPartialOneForLater(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "records-7.log")
	require.NoError(t, os.WriteFile(name, []byte("S job1 1 1 7 1000\nD job1 1 1 7 2000\nD job2 2 1"), 0o644))
	l := newLedger(dir)
	require.NoError(t, l.refresh())
	require.Len(t, l.starts["job1"], 1)
	require.Len(t, l.done["job1"], 1)
	require.Empty(t, l.done["job2"])

	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(" 7 3000\ngarbage\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, l.refresh())
	require.Len(t, l.done["job2"], 1)
	require.Equal(t, event{Kind: "D", ID: "job2", Seq: 2, Attempt: 1, PID: 7, At: time.UnixMicro(3000)}, l.done["job2"][0])
	require.Equal(t, 1, l.bad)
	require.Zero(t, l.interrupted())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "records-8.log"), []byte("S job3 3 1 8 4000\n"), 0o644))
	require.NoError(t, l.refresh())
	require.Equal(t, 1, l.interrupted(), "a start without its completion")
}

func TestExplainDoubleNamesTheFaultThatInterruptedTheFirstRun(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	first := event{Kind: "D", ID: "j", Attempt: 1, PID: 10, At: t0}
	second := event{Kind: "D", ID: "j", Attempt: 2, PID: 20, At: t0.Add(6 * time.Second)}
	secondStart := event{Kind: "S", ID: "j", Attempt: 2, PID: 20, At: t0.Add(5990 * time.Millisecond)}
	lease := 5 * time.Second
	tests := []struct {
		name      string
		faults    []fault
		explained bool
		cause     string
	}{
		{"consumer killed after completing", []fault{{Kind: faultConsumerKill, PID: 10, Start: t0.Add(2 * time.Millisecond)}},
			true, "consumer 10 SIGKILLed 2ms after completing attempt 1"},
		{"another consumer killed", []fault{{Kind: faultConsumerKill, PID: 11, Start: t0.Add(2 * time.Millisecond)}},
			false, "UNEXPLAINED"},
		{"consumer killed before completing", []fault{{Kind: faultConsumerKill, PID: 10, Start: t0.Add(-time.Second)}},
			false, "UNEXPLAINED"},
		{"Redis restarted at the completion", []fault{{Kind: faultRedisRestart, Start: t0.Add(-100 * time.Millisecond),
			End: t0.Add(400 * time.Millisecond)}}, true, "Redis restarted"},
		{"Redis restarted long before", []fault{{Kind: faultRedisRestart, Start: t0.Add(-10 * time.Second),
			End: t0.Add(-9 * time.Second)}}, false, "UNEXPLAINED"},
		{"node fault", []fault{{Kind: faultNodeKill, Start: t0, End: t0.Add(time.Second)}}, false, "UNEXPLAINED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := explainDouble("j", []event{second, first}, []event{secondStart}, tt.faults, lease)
			require.Equal(t, tt.explained, d.Explained, d.Cause)
			require.Contains(t, d.Cause, tt.cause)
			require.Equal(t, first, d.Runs[0], "runs in time order")
		})
	}
}

func TestExplainDoubleFlagsOverlappingRuns(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	first := event{Kind: "D", ID: "j", Attempt: 1, PID: 10, At: t0}
	second := event{Kind: "D", ID: "j", Attempt: 2, PID: 20, At: t0.Add(time.Second)}
	start := event{Kind: "S", ID: "j", Attempt: 2, PID: 20, At: t0.Add(-time.Second)}
	d := explainDouble("j", []event{first, second}, []event{start}, nil, 5*time.Second)
	require.False(t, d.Explained)
	require.Contains(t, d.Cause, "the runs overlapped")
}
