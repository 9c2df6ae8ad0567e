package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The backlog consumer subprocess tracks up to a million jobs, and its peak
// RSS is the figure measured: the bench's own bookkeeping there must not grow
// with the number of jobs by more than a bit per job, or the 1,000,000-job
// figure would mostly measure the bench. A compact tracker keeps a bit per
// job (seen or not) and the lateness as a histogram of fixed size.

// newCompactTracker is newTracker, measuring lateness, in memory of a bit per
// job plus a fixed histogram; its percentiles are within 1% of the exact ones
// (rounded away from zero), the maximum and the early count exact.
func newCompactTracker(n int) *tracker {
	t := &tracker{n: n, seen: make([]atomic.Uint32, (n+31)/32), finished: make(chan struct{})}
	if n == 0 {
		close(t.finished)
	}
	t.lat = &latencies{hist: newHistogram()}
	return t
}

// histSub is the number of buckets each power of two of nanoseconds is split
// into: a bucket spans under 1/histSub of its values.
const histSub = 128

// histogram counts durations in log-linear buckets, on each side of zero.
type histogram struct {
	pos, neg [64 * histSub]atomic.Uint32
	zero     atomic.Uint32
	max      atomic.Int64
	early    atomic.Int64
	count    atomic.Int64
}

// histIndex is the bucket of v nanoseconds (v > 0): exact below 2*histSub,
// then histSub buckets per power of two.
func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	e := bits.Len64(v) - 8 // v>>e is in [histSub, 2*histSub)
	return (e+1)*histSub + int(v>>e) - histSub
}

// histUpper is the largest value of bucket i.
func histUpper(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return (m+1)<<e - 1
}

func newHistogram() *histogram {
	h := &histogram{}
	h.max.Store(math.MinInt64)
	return h
}

func (h *histogram) add(d time.Duration) {
	h.count.Add(1)
	for cur := h.max.Load(); int64(d) > cur && !h.max.CompareAndSwap(cur, int64(d)); cur = h.max.Load() {
	}
	switch {
	case d > 0:
		h.pos[histIndex(uint64(d))].Add(1)
	case d < 0:
		h.early.Add(1)
		h.neg[histIndex(uint64(-d))].Add(1)
	default:
		h.zero.Add(1)
	}
}

// summary is the distribution so far; a percentile is its bucket's bound
// farthest from zero.
func (h *histogram) summary() summary {
	n := int(h.count.Load())
	s := summary{Count: n, Early: int(h.early.Load())}
	if n == 0 {
		return s
	}
	s.Max = ms(time.Duration(h.max.Load()))
	ranks := []float64{0.50, 0.90, 0.99}
	out := []*float64{&s.P50, &s.P90, &s.P99}
	next, seen := 0, 0
	visit := func(count uint32, v int64) {
		seen += int(count)
		for next < len(ranks) && seen >= max(1, int(math.Ceil(ranks[next]*float64(n)))) {
			*out[next] = ms(time.Duration(v))
			next++
		}
	}
	for i := len(h.neg) - 1; i >= 0; i-- {
		if c := h.neg[i].Load(); c > 0 {
			visit(c, -histUpper(i))
		}
	}
	visit(h.zero.Load(), 0)
	for i := range h.pos {
		if c := h.pos[i].Load(); c > 0 {
			visit(c, histUpper(i))
		}
	}
	return s
}
