package dq

import "testing"

func TestRecentForgetsTheOldestEntryWhenFull(t *testing.T) {
	t.Parallel()
	r := newRecent[string, int](2)
	r.add("a", 1, false)
	r.add("b", 2, false)
	r.add("a", 9, false) // kept as it was
	if v, ok := r.get("a", false); !ok || v != 1 {
		t.Fatalf("a = %d, %v; want 1 kept", v, ok)
	}
	r.add("b", 3, true)
	if v, _ := r.get("b", false); v != 3 {
		t.Fatalf("b = %d; want 3 replaced", v)
	}
	r.add("c", 4, false) // forgets a, the oldest
	if _, ok := r.get("a", false); ok {
		t.Fatal("a outlived a full ring")
	}
	if v, ok := r.get("c", true); !ok || v != 4 {
		t.Fatalf("c = %d, %v", v, ok)
	}
	if _, ok := r.get("c", false); ok {
		t.Fatal("c still there after get with forget")
	}
	if len(r.m) > 2 {
		t.Fatalf("%d entries in a ring of 2", len(r.m))
	}
}
