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

func TestRecentPutsTakesOnlyTheEntryOfItsOwnID(t *testing.T) {
	t.Parallel()
	var r recentPuts
	r.init()
	r.add("job-a", make([]writtenCopy, 5)) // past the inline copies
	s, h := r.key("job-a")
	// Another ID whose hash is the same as job-a's took the entry.
	other, _ := s.get(h, false)
	other.id = "job-b"
	s.add(h, other, true)
	if _, ok := r.take("job-a"); ok {
		t.Fatal("took the entry of another ID sharing the hash")
	}
	if _, ok := s.get(h, false); !ok {
		t.Fatal("a take for another ID dropped the entry")
	}
	r.add("job-a", make([]writtenCopy, 5))
	c, ok := r.take("job-a")
	if !ok || len(c.all()) != 5 {
		t.Fatalf("take = %d copies, %v; want 5, true", len(c.all()), ok)
	}
	if _, ok := r.take("job-a"); ok {
		t.Fatal("an entry taken twice")
	}
}
