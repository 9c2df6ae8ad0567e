package dq

import "sync"

// recentDone remembers the IDs of jobs this process finished lately, so that
// their other copies, which usually arrive within moments, are deleted
// without another claim: a done record never runs again, so the answer is
// known. It is bounded: the oldest ID goes when it is full, and a forgotten
// ID only costs a claim.
type recentDone struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecentDone(size int) *recentDone {
	return &recentDone{ids: make(map[string]struct{}, size), ring: make([]string, size)}
}

func (r *recentDone) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.ids[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

func (r *recentDone) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}
