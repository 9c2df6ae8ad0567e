package envelope

import (
	"crypto/sha256"
	"hash"
)

const macSize = sha256.Size

// signer computes HMAC-SHA256 (RFC 2104) with a reusable SHA-256 state. crypto/hmac builds and allocates a
// keyed state per key, and the ring's keys have no home where such a state could be kept, while the encoder
// must not allocate.
type signer struct {
	h   hash.Hash
	pad [sha256.BlockSize]byte
	sum [sha256.Size]byte
}

// signers is a small free list rather than a sync.Pool: a pool is emptied at every GC cycle and, under the
// race detector, drops items on purpose, which would make the encoder's zero-allocation promise both weaker
// and untestable. When more goroutines sign at once than it holds, the extra signers are simply dropped.
var signers = make(chan *signer, 32)

func getSigner() *signer {
	select {
	case s := <-signers:
		return s
	default:
		return &signer{h: sha256.New()}
	}
}

func putSigner(s *signer) {
	select {
	case signers <- s:
	default:
	}
}

// sign returns HMAC-SHA256(key, head || body) without joining head and body.
func sign(key, head, body []byte) [macSize]byte {
	s := getSigner()
	defer putSigner(s)

	s.pad = [sha256.BlockSize]byte{}
	if len(key) > sha256.BlockSize {
		s.h.Reset()
		s.h.Write(key)
		s.h.Sum(s.pad[:0])
	} else {
		copy(s.pad[:], key)
	}
	for i := range s.pad {
		s.pad[i] ^= 0x36
	}
	s.h.Reset()
	s.h.Write(s.pad[:])
	s.h.Write(head)
	s.h.Write(body)
	inner := s.h.Sum(s.sum[:0])
	for i := range s.pad {
		s.pad[i] ^= 0x36 ^ 0x5c
	}
	s.h.Reset()
	s.h.Write(s.pad[:])
	s.h.Write(inner)
	s.h.Sum(s.sum[:0])
	return s.sum
}

// fingerprint names a key on the wire without revealing it, so a verifier tries only the key that signed.
func fingerprint(key []byte) (fp [fingerprintLen]byte) {
	sum := sha256.Sum256(key)
	copy(fp[:], sum[:])
	return fp
}
