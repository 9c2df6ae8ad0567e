package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSummarizeTakesNearestRankPercentilesAndCountsEarlyStarts(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // out of order on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := summarize(d)
	require.Equal(t, summary{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100}, s)

	s = summarize([]time.Duration{-3 * time.Millisecond, -time.Microsecond, 0, 5 * time.Millisecond})
	require.Equal(t, 2, s.Early, "negative lateness is early, zero is on time")
	require.Equal(t, -0.001, s.P50)
	require.Equal(t, summary{}, summarize(nil))
}

func TestBodyRoundTripsSequenceAndDueTime(t *testing.T) {
	due := time.Unix(1700000000, 123456789)
	b := makeBody(64, 42, due)
	require.Len(t, b, 64)
	seq, got, ok := parseBody(b)
	require.True(t, ok)
	require.Equal(t, uint64(42), seq)
	require.True(t, due.Equal(got))
	_, _, ok = parseBody([]byte("short"))
	require.False(t, ok)
}

func TestTrackerCountsDoublesAndClosesWhenAllComplete(t *testing.T) {
	tr := newTracker(2, false)
	require.True(t, tr.first(0))
	require.False(t, tr.first(0))
	require.False(t, tr.first(7), "out of range")
	tr.completed()
	require.False(t, tr.wait(time.Now(), time.Millisecond))
	require.True(t, tr.first(1))
	tr.completed()
	require.True(t, tr.wait(time.Now(), time.Second))
	require.Equal(t, int64(1), tr.doubles.Load())
}

func TestThousandsGroupsDigits(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 200000: "200,000", -1234567: "-1,234,567"} {
		require.Equal(t, want, thousands(in))
	}
}

func TestTableAlignsFiguresAndShowsMissingBaselines(t *testing.T) {
	var r report
	r.add(row{name: "produce, 16 goroutines", unit: "jobs/s", key: "a", rawKey: "b", value: 12345.6, raw: 99999, note: "n1"})
	r.add(row{name: "backlog RSS", unit: "MB", key: "c", value: 42, note: "n2"})
	var out bytes.Buffer
	r.table(&out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	require.Contains(t, lines[1], "12,346")
	require.Contains(t, lines[1], "99,999")
	require.Contains(t, lines[2], " - ")
	// The figures end in the same column.
	require.Equal(t, strings.Index(lines[1], "12,346")+len("12,346"), strings.Index(lines[2], "42")+len("42"))
	js := r.json()
	require.Equal(t, 12345.6, js["a"])
	require.NotContains(t, js, "")
}
