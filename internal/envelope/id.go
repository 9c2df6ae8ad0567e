package envelope

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
)

const (
	// idAlphabet is in ASCII order, so that IDs compare as strings the way their 128-bit values compare.
	idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	idLen      = 26
	maxIDDue   = 1<<48 - 1
)

// idValues maps a byte to its value in idAlphabet, 0xff for bytes outside it.
var idValues = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(idAlphabet) {
		t[idAlphabet[i]] = byte(i)
	}
	return t
}()

// NewID returns a new job ID due at dueMs (Unix milliseconds): 48 bits of due time followed by 80 random bits,
// written as 26 characters of lowercase Crockford-style base32. IDs therefore sort by due time as strings and
// are safe in URLs and yaml. A due time outside 0..2^48-1 ms (years 1970..10889) is clamped into that range.
// It is safe for concurrent use; the random bits come from crypto/rand, so IDs are unique across processes.
func NewID(dueMs int64) string {
	due := uint64(min(max(dueMs, 0), maxIDDue))
	var r [10]byte
	idRandom(r[:])
	hi := due<<16 | uint64(binary.BigEndian.Uint16(r[:2]))
	lo := binary.BigEndian.Uint64(r[2:])

	// 26 digits of 5 bits hold 130 bits: the first digit carries the top 3 bits only, so it is 0..7.
	var b [idLen]byte
	for i := idLen - 1; i >= 0; i-- {
		b[i] = idAlphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

// idRandBatch is how many IDs' random bits one crypto/rand read draws.
const idRandBatch = 32

// idRands hold random bits drawn ahead from crypto/rand, each used once.
var idRands = sync.Pool{New: func() any { return new(idRand) }}

type idRand struct {
	b   [10 * idRandBatch]byte
	off int // b[off:] is unused
}

// idRandom fills r (10 bytes) with random bits from crypto/rand, drawn in
// batches: one read per batch instead of one per ID.
func idRandom(r []byte) {
	s := idRands.Get().(*idRand)
	if s.off == 0 || s.off+len(r) > len(s.b) {
		_, _ = rand.Read(s.b[:]) // crypto/rand.Read never fails: it crashes the program rather than return an error
		s.off = 0
	}
	s.off += copy(r, s.b[s.off:])
	if s.off == len(s.b) {
		s.off = 0
	}
	idRands.Put(s)
}

// IDDue reads the due time back from an ID made by NewID. It reports false for any string NewID cannot have
// made; a user's ID that happens to have the same shape (26 characters of the alphabet, the first 0..7) is
// read like a generated one.
func IDDue(id string) (dueMs int64, ok bool) {
	if len(id) != idLen {
		return 0, false
	}
	var hi, lo uint64
	for i := range idLen {
		v := idValues[id[i]]
		if v == 0xff || (i == 0 && v > 7) {
			return 0, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	return int64(hi >> 16), true
}

// ValidID reports whether id is acceptable as a job ID, with an error wrapping ErrInvalid that says why not.
// An ID is 1..200 bytes of printable ASCII without space, '/' (it would read as a go-queue ID in Revoke), '{' or
// '}' (Redis Cluster hash tags would pin every job's record to one shard).
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: id is empty", ErrInvalid)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%w: id is %d bytes, more than %d", ErrInvalid, len(id), maxIDLen)
	}
	for i := range len(id) {
		if c := id[i]; c <= ' ' || c > '~' || c == '/' || c == '{' || c == '}' {
			return fmt.Errorf("%w: id byte %d is %q", ErrInvalid, i, c)
		}
	}
	return nil
}
