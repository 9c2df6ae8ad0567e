package dq

import "sync"

// recent is a bounded map that forgets its oldest entry to make room: a
// ring of keys in the order they were added beside the map. Losing an entry
// must only cost a slower path, never a wrong answer. It is safe for
// concurrent use.
type recent[K comparable, V any] struct {
	mu   sync.Mutex
	m    map[K]V
	ring []K
	used int // ring slots filled so far
	next int
}

func newRecent[K comparable, V any](size int) *recent[K, V] {
	return &recent[K, V]{m: make(map[K]V, size), ring: make([]K, size)}
}

// add stores v under k, forgetting the oldest key when the ring is full. A
// k already there keeps its value unless replace is set.
func (r *recent[K, V]) add(k K, v V, replace bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[k]; ok {
		if replace {
			r.m[k] = v
		}
		return
	}
	if r.used == len(r.ring) {
		delete(r.m, r.ring[r.next])
	} else {
		r.used++
	}
	r.ring[r.next] = k
	r.m[k] = v
	r.next = (r.next + 1) % len(r.ring)
}

// get returns the value under k; with forget, it also drops k.
func (r *recent[K, V]) get(k K, forget bool) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[k]
	if ok && forget {
		delete(r.m, k) // its ring slot is reused in turn
	}
	return v, ok
}

// takeIf returns and drops the value under k if match accepts it.
func (r *recent[K, V]) takeIf(k K, match func(V) bool) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[k]
	if !ok || !match(v) {
		var zero V
		return zero, false
	}
	delete(r.m, k) // its ring slot is reused in turn
	return v, true
}
