package main

import (
	"encoding/binary"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// tracker follows the jobs of one scenario, numbered 0..n-1 by the sequence
// number in their body: how often each ran, when the last of them completed,
// and optionally how late each started.
type tracker struct {
	n        int
	runs     []atomic.Int32
	seen     []atomic.Uint32 // instead of runs: a bit per job (newCompactTracker)
	done     atomic.Int64
	doubles  atomic.Int64
	finished chan struct{}
	lastDone atomic.Int64 // unix nanoseconds of the completion that made done reach n
	progress atomic.Int64 // unix nanoseconds of the latest completion

	lat *latencies // nil when lateness is not measured
}

func newTracker(n int, measureLateness bool) *tracker {
	t := &tracker{n: n, runs: make([]atomic.Int32, n), finished: make(chan struct{})}
	if n == 0 {
		close(t.finished)
	}
	if measureLateness {
		t.lat = newLatencies(n)
	}
	return t
}

// first reports whether this is the first run of job seq; later runs are
// counted as doubles. Sequence numbers out of range (a stray body) are ignored.
func (t *tracker) first(seq uint64) bool {
	if seq >= uint64(t.n) {
		return false
	}
	if t.seen != nil {
		bit := uint32(1) << (seq % 32)
		if t.seen[seq/32].Or(bit)&bit == 0 {
			return true
		}
		t.doubles.Add(1)
		return false
	}
	if t.runs[seq].Add(1) == 1 {
		return true
	}
	t.doubles.Add(1)
	return false
}

// started records how late a first run started.
func (t *tracker) started(late time.Duration) {
	if t.lat != nil {
		t.lat.add(late)
	}
}

// completed counts one job as done; the n-th completion closes finished.
func (t *tracker) completed() {
	t.progress.Store(time.Now().UnixNano())
	if t.done.Add(1) == int64(t.n) {
		t.lastDone.Store(time.Now().UnixNano())
		close(t.finished)
	}
}

// wait waits until every job completed, or until no job completed for
// stall (counted from since at the earliest, when the jobs start to be due),
// and reports whether all did. A slow system is measured however slow it
// is; only one that stopped making progress is given up on.
func (t *tracker) wait(since time.Time, stall time.Duration) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.finished:
			return true
		case now := <-tick.C:
			last := max(since.UnixNano(), t.progress.Load())
			if now.Sub(time.Unix(0, last)) > stall {
				return false
			}
		}
	}
}

// rate is n jobs over the time from start to the last completion.
func (t *tracker) rate(start time.Time) float64 {
	end := time.Unix(0, t.lastDone.Load())
	return perSecond(t.n, end.Sub(start))
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	hist *histogram // instead of d (newCompactTracker)
}

func newLatencies(capacity int) *latencies {
	return &latencies{d: make([]time.Duration, 0, capacity)}
}

func (l *latencies) add(d time.Duration) {
	if l.hist != nil {
		l.hist.add(d)
		return
	}
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// summary is a lateness distribution in milliseconds.
type summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Early int     `json:"early"` // started before the due time
}

func (l *latencies) summary() summary {
	if l.hist != nil {
		return l.hist.summary()
	}
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	return summarize(d)
}

func summarize(d []time.Duration) summary {
	s := summary{Count: len(d)}
	if len(d) == 0 {
		return s
	}
	slices.Sort(d)
	for _, x := range d {
		if x < 0 {
			s.Early++
		}
	}
	s.P50 = ms(percentile(d, 0.50))
	s.P90 = ms(percentile(d, 0.90))
	s.P99 = ms(percentile(d, 0.99))
	s.Max = ms(d[len(d)-1])
	return s
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// Job bodies of the bench: an 8-byte sequence number, for raw jobs an 8-byte
// due time in unix nanoseconds (zerodq jobs carry theirs in the envelope),
// then padding up to the body size.
const bodyHeader = 16

func makeBody(size int, seq uint64, due time.Time) []byte {
	b := make([]byte, max(size, bodyHeader))
	binary.BigEndian.PutUint64(b, seq)
	binary.BigEndian.PutUint64(b[8:], uint64(due.UnixNano()))
	for i := bodyHeader; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

// parseBody returns the sequence number and due time of a bench body; ok is
// false for a body the bench did not write.
func parseBody(b []byte) (seq uint64, due time.Time, ok bool) {
	if len(b) < bodyHeader {
		return 0, time.Time{}, false
	}
	return binary.BigEndian.Uint64(b), time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))), true
}
