package admin

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// sampler keeps, per consumer and per producer, the two latest distinct
// registry entries it has read, so that rates and rises can be computed
// from successive entries: the registry holds counters since each process
// started, not rates. Every read of the registry (the poller's, a page's)
// feeds it.
type sampler struct {
	mu        sync.Mutex
	consumers map[string]*pair[dq.ConsumerInfo]
	producers map[string]*pair[dq.ProducerInfo]
}

// pair is an entry and the one before it (prev is zero until a second,
// newer entry is read).
type pair[T any] struct {
	prev, last T
	lastSeen   time.Time // when last was written
	hasPrev    bool
	seen       time.Time // when this sampler last read the process's entry
}

func newSampler() *sampler {
	return &sampler{
		consumers: map[string]*pair[dq.ConsumerInfo]{},
		producers: map[string]*pair[dq.ProducerInfo]{},
	}
}

// forgetAfter drops processes not read for this long (gone from the
// registry).
const forgetAfter = 5 * time.Minute

// addConsumers records a read of the consumer registry.
func (s *sampler) addConsumers(cs []dq.ConsumerInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	track(s.consumers, cs, func(c dq.ConsumerInfo) (string, time.Time) { return c.ID, c.Seen })
}

// addProducers records a read of the producer registry.
func (s *sampler) addProducers(ps []dq.ProducerInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	track(s.producers, ps, func(p dq.ProducerInfo) (string, time.Time) { return p.ID, p.Seen })
}

// track records a read of a registry in pairs: an entry written since the
// last read becomes the latest, the one before it the previous; entries
// not read for forgetAfter are forgotten.
func track[T any](pairs map[string]*pair[T], entries []T, key func(T) (id string, seen time.Time)) {
	now := time.Now()
	for _, e := range entries {
		id, seen := key(e)
		p := pairs[id]
		switch {
		case p == nil:
			pairs[id] = &pair[T]{last: e, lastSeen: seen, seen: now}
		case seen.After(p.lastSeen):
			p.prev, p.last, p.lastSeen, p.hasPrev, p.seen = p.last, e, seen, true, now
		default:
			p.seen = now
		}
	}
	for id, p := range pairs {
		if now.Sub(p.seen) > forgetAfter {
			delete(pairs, id)
		}
	}
}

// rates are the outcomes per second over the consumers given, each from its
// two latest entries; known is false when no consumer has two yet.
func (s *sampler) rates(cs []dq.ConsumerInfo) (rates map[string]float64, reserveRise int64, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rates = map[string]float64{}
	for _, c := range cs {
		p := s.consumers[c.ID]
		if p == nil || !p.hasPrev {
			continue
		}
		dt := p.last.Seen.Sub(p.prev.Seen).Seconds()
		if dt <= 0 {
			continue
		}
		known = true
		for k, v := range p.last.Outcomes {
			if d := v - p.prev.Outcomes[k]; d > 0 {
				rates[k] += float64(d) / dt
			}
		}
		for k, v := range p.last.ReserveErrors {
			if d := v - p.prev.ReserveErrors[k]; d > 0 {
				reserveRise += d
			}
		}
	}
	return rates, reserveRise, known
}

// alert is one line of the overview's banner.
type alert struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// health is what the banner's alerts are evaluated from.
type health struct {
	stats      dq.Stats
	consumers  []dq.ConsumerInfo
	producers  []dq.ProducerInfo
	prodKnown  bool // the producer registry was read
	lateness   dq.Lateness
	rates      map[string]float64
	reserve    int64
	ratesKnown bool
}

// evaluate returns the alerts that fire, in a fixed order: the README's
// "worth an alert" list with the thresholds of a.
func evaluate(a AlertConf, h health) []alert {
	var out []alert
	if a.RetryRate >= 0 && h.ratesKnown && h.rates["retry"] > a.RetryRate {
		out = append(out, alert{"retry-rate", fmt.Sprintf("retries at %.2f/s (alert above %.2f/s)", h.rates["retry"], a.RetryRate)})
	}
	if a.DeadRate >= 0 && h.ratesKnown && h.rates["dead"] > a.DeadRate {
		out = append(out, alert{"dead-rate", fmt.Sprintf("jobs dying at %.2f/s (alert above %.2f/s)", h.rates["dead"], a.DeadRate)})
	}
	var malformed int64
	for _, c := range h.consumers {
		malformed += c.Outcomes["malformed"]
	}
	if a.Malformed >= 0 && malformed >= a.Malformed {
		out = append(out, alert{"malformed", fmt.Sprintf("%d malformed bodies seen by the live consumers", malformed)})
	}
	if a.ReserveErrors >= 0 && h.ratesKnown && h.reserve >= a.ReserveErrors {
		out = append(out, alert{"reserve-errors", fmt.Sprintf("%d failed reserves in the latest interval", h.reserve)})
	}
	if p99 := h.lateness.Quantile(0.99); a.LatenessP99 >= 0 && h.lateness.Count > 0 && p99 > a.LatenessP99 {
		out = append(out, alert{"lateness", fmt.Sprintf("lateness p99 %v (alert above %v)", p99, a.LatenessP99)})
	}
	if a.CopiesFailed >= 0 && h.prodKnown {
		bad := map[string]int64{}
		for _, p := range h.producers {
			for ep, n := range p.Nodes {
				bad[ep] += n.Failed + n.Uncertain
			}
		}
		var eps []string
		for ep, n := range bad {
			if n >= a.CopiesFailed {
				eps = append(eps, fmt.Sprintf("%s (%d)", ep, n))
			}
		}
		sort.Strings(eps)
		if len(eps) > 0 {
			out = append(out, alert{"copies-failed", fmt.Sprintf("puts failed or uncertain on %v: their jobs have fewer copies", eps)})
		}
	}
	var down []string
	for _, t := range h.stats.Tubes {
		if t.Err != "" {
			down = append(down, t.Node)
		}
	}
	if len(down) > 0 {
		out = append(out, alert{"node-down", fmt.Sprintf("nodes not answering: %v", down)})
	}
	return out
}

// mergeLateness merges the consumers' latest intervals.
func mergeLateness(cs []dq.ConsumerInfo) dq.Lateness {
	var l dq.Lateness
	for _, c := range cs {
		if c.Lateness.Count > 0 || len(c.Lateness.Buckets) > 0 {
			l.Merge(c.Lateness)
		}
	}
	return l
}
