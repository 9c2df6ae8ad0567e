package dq

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// LatenessBounds are the upper bounds of a Lateness histogram's buckets, in
// order; a last bucket past them counts everything later.
var LatenessBounds = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second, time.Minute,
}

// Lateness is a histogram of how late jobs started (a handler's start minus
// the job's due time) over one interval: what a consumer saw between two
// registry writes, or several of those merged.
type Lateness struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Count int64     `json:"count"`
	// Min and Max are the earliest and latest start of the interval; a Min
	// below zero would be a job started early, which never happens.
	Min time.Duration `json:"min"`
	Max time.Duration `json:"max"`
	// Buckets counts starts per LatenessBounds bucket, len(LatenessBounds)+1
	// of them (the last past every bound); a start before its due time
	// counts in the first.
	Buckets []int64 `json:"buckets"`
}

// Quantile estimates the q-quantile (0 < q ≤ 1) of the interval's
// lateness from its buckets, never outside [Min, Max]; 0 when it is empty.
func (l Lateness) Quantile(q float64) time.Duration {
	switch {
	case l.Count <= 0:
		return 0
	case q <= 0:
		return l.Min
	case q >= 1:
		return l.Max
	}
	rank := q * float64(l.Count)
	var below int64
	for i, n := range l.Buckets {
		if n <= 0 || float64(below+n) < rank {
			below += n
			continue
		}
		// The bucket's span, narrowed to what the interval saw.
		lo, hi := l.Min, l.Max
		if i > 0 && i-1 < len(LatenessBounds) {
			lo = max(lo, LatenessBounds[i-1])
		}
		if i < len(LatenessBounds) {
			hi = min(hi, LatenessBounds[i])
		}
		if hi <= lo {
			return lo
		}
		frac := (rank - float64(below)) / float64(n)
		return lo + time.Duration(math.Round(float64(hi-lo)*frac))
	}
	return l.Max
}

// Merge adds o's starts to l, widening l's interval to cover o's.
func (l *Lateness) Merge(o Lateness) {
	if !o.From.IsZero() && (l.From.IsZero() || o.From.Before(l.From)) {
		l.From = o.From
	}
	if o.To.After(l.To) {
		l.To = o.To
	}
	if o.Count <= 0 {
		return
	}
	if l.Count <= 0 {
		l.Min, l.Max = o.Min, o.Max
	} else {
		l.Min, l.Max = min(l.Min, o.Min), max(l.Max, o.Max)
	}
	l.Count += o.Count
	if len(l.Buckets) < len(o.Buckets) {
		l.Buckets = append(l.Buckets, make([]int64, len(o.Buckets)-len(l.Buckets))...)
	}
	for i, n := range o.Buckets {
		l.Buckets[i] += n
	}
}

// PutCounts are one node's puts as a producer saw them since it started.
type PutCounts struct {
	Puts      int64 `json:"puts"`      // copies the node stored
	Failed    int64 `json:"failed"`    // puts refused or not sent
	Uncertain int64 `json:"uncertain"` // puts whose reply never came: the copy may exist
}

// ProducerInfo is a producer's registry entry, written at its first enqueue
// and rewritten every few seconds until Close, which removes it (beside the
// consumers' ones, same lifetime rules). A producer that never enqueues has
// none.
type ProducerInfo struct {
	ID       string               `json:"id"`
	Host     string               `json:"host"`
	Pid      int                  `json:"pid"`
	Version  string               `json:"version"`
	Queue    string               `json:"queue"`
	Started  time.Time            `json:"started"`
	Seen     time.Time            `json:"seen"`
	Enqueued int64                `json:"enqueued"` // enqueues that returned a job ID
	Failed   int64                `json:"failed"`   // enqueues that returned an error once under way (not a refused time or delay)
	Nodes    map[string]PutCounts `json:"nodes"`    // by node endpoint
}

// Producers lists the queue's producers from their registry entries.
func (in *Inspector) Producers(ctx context.Context) ([]ProducerInfo, error) {
	now, err := in.store.Now(ctx)
	if err != nil {
		return nil, fmt.Errorf("dq: inspector: producers: %w", err)
	}
	raw, err := in.store.Index().Producers(ctx, in.tube, now)
	if err != nil {
		return nil, fmt.Errorf("dq: inspector: producers: %w", err)
	}
	out := make([]ProducerInfo, 0, len(raw))
	for _, b := range raw {
		var pi ProducerInfo
		if json.Unmarshal(b, &pi) == nil {
			out = append(out, pi)
		}
	}
	slices.SortStableFunc(out, func(a, b ProducerInfo) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// add counts one start d late in l.
func (l *Lateness) add(d time.Duration) {
	if len(l.Buckets) != len(LatenessBounds)+1 {
		l.Buckets = make([]int64, len(LatenessBounds)+1)
	}
	if l.Count == 0 {
		l.Min, l.Max = d, d
	} else {
		l.Min, l.Max = min(l.Min, d), max(l.Max, d)
	}
	l.Count++
	i, _ := slices.BinarySearch(LatenessBounds, d)
	l.Buckets[i]++
}
