package dq

import "time"

// recentDone remembers the jobs this process finished lately, so that their
// other copies, which usually arrive within moments, are deleted without
// another claim: a done record never runs again, so the answer is known.
//
// It may only repeat what the record would answer, and for no longer: an
// entry is keyed by job ID and due time (the copies of one enqueue share it;
// a WithID enqueued again after its record expired carries another), and it
// lapses DedupeTTL after the finish was sent, before the record can expire
// (Redis sets the record's TTL when it runs the finish, later still). It is
// bounded: the oldest entry goes when it is full, and a forgotten one only
// costs a claim.
type recentDone struct {
	ttl time.Duration
	m   *recent[doneKey, time.Time] // → when the entry lapses
}

// doneKey names one enqueue of a job: its ID and due time.
type doneKey struct {
	id    string
	dueMs int64
}

func newRecentDone(size int, ttl time.Duration) *recentDone {
	return &recentDone{ttl: ttl, m: newRecent[doneKey, time.Time](size)}
}

// add remembers the job due at dueMs as done by a finish sent at sent.
func (r *recentDone) add(id string, dueMs int64, sent time.Time) {
	// The first finish sent lapses first: an entry is never stretched.
	r.m.add(doneKey{id: id, dueMs: dueMs}, sent.Add(r.ttl), false)
}

// has reports whether the job due at dueMs is known done.
func (r *recentDone) has(id string, dueMs int64) bool {
	k := doneKey{id: id, dueMs: dueMs}
	until, ok := r.m.get(k, false)
	if !ok {
		return false
	}
	if time.Now().Before(until) { // monotonic: a wall-clock step cannot stretch it
		return true
	}
	r.m.get(k, true)
	return false
}
