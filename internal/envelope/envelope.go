// Package envelope encodes and decodes the bytes zerodq stores as a beanstalkd job body, and makes job IDs.
//
// Every copy of a job carries its own description, because beanstalkd gives a consumer nothing but the body:
// which job it is, when exactly it is due, which of the job's slots this copy fills, and how to put it back.
//
// Wire layout, version 1 (multi-byte integers big-endian, uvarint as in encoding/binary):
//
//	offset  size  field
//	0       3     magic "ZQ\xff"
//	3       1     version, 1
//	4       1     mode: bit 0 set = signed; other bits must be zero
//	5       1     flags (FlagUnc, ...)
//	6       1     slot i of this copy
//	7       1     slot count n (0 = unknown)
//	8       4     priority
//	12      4     TTR in seconds
//	16      8     due time, Unix milliseconds (two's complement)
//	24      ...   ID: uvarint length, bytes
//	        ...   headers: uvarint count, then per header uvarint length + key, uvarint length + value
//	        4     signed only: key fingerprint, the first 4 bytes of SHA-256(key)
//	        32    signed only: HMAC-SHA256(key, every byte from the magic through the fingerprint, then the body)
//	        ...   the user's body, untouched, to the end of the data
//
// The magic starts with a letter, so it never collides with a go-queue body ("<unixnano>/<body>" starts with a
// decimal digit), and its third byte 0xff never occurs in UTF-8, so no JSON or other text body can begin with
// it. Lengths are minimal uvarints and a longer encoding of the same number is rejected, so an envelope has
// exactly one encoding for a given signing key.
package envelope

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// WriterHeader names the header in which a WithID enqueue carries its writer id, so that the copies of a
// writer whose reservation of the ID another writer took over are told apart and never run.
const WriterHeader = "zerodq-writer"

// FlagUnc marks a copy written after an earlier put of the same job had an uncertain outcome, so the job's
// record must not be garbage-collected by counting deleted slots.
const FlagUnc uint8 = 1

const (
	magic          = "ZQ\xff"
	version1       = 1
	modeSigned     = 1
	fixedSize      = 24
	fingerprintLen = 4
	sigSize        = fingerprintLen + macSize
	maxIDLen       = 200
	maxHeaders     = 64
)

// Rejection reasons. Decode and AppendEncode wrap them with detail, so match them with errors.Is.
var (
	// ErrNotEnvelope means the data is neither a zerodq envelope nor a go-queue body.
	ErrNotEnvelope = errors.New("envelope: not an envelope")
	// ErrTruncated means the data ends inside the envelope's header or signature.
	ErrTruncated = errors.New("envelope: truncated")
	// ErrVersion means the envelope was written in a format version or mode this code does not know.
	ErrVersion = errors.New("envelope: unknown version")
	// ErrInvalid means a field holds a value the format forbids (bad ID, slot out of range, ...).
	ErrInvalid = errors.New("envelope: invalid")
	// ErrUnsigned means signing keys are configured but the envelope carries no MAC.
	ErrUnsigned = errors.New("envelope: unsigned")
	// ErrBadSignature means the envelope's MAC matches none of the configured keys.
	ErrBadSignature = errors.New("envelope: bad signature")
	// ErrLegacyRefused means a go-queue body was read while signing keys are set and legacy bodies are not
	// accepted: such a body carries no MAC, so anyone able to put into the tube could have written it.
	ErrLegacyRefused = errors.New("envelope: legacy body refused")
)

// Envelope is one copy of a job as stored in beanstalkd.
type Envelope struct {
	// ID is the job ID: 1..200 bytes of printable ASCII without whitespace, '/', '{' or '}' (see ValidID).
	ID string
	// DueMs is the exact due time in Unix milliseconds on the Redis time base.
	DueMs int64
	// Slot is this copy's slot (0-based); it must be below Count unless Count is 0.
	Slot uint8
	// Count is the job's slot count; 0 means unknown (legacy bodies), and such a record is never
	// garbage-collected by counting deleted slots.
	Count uint8
	// Flags holds FlagUnc and any future flag bits; unknown bits are carried through untouched.
	Flags uint8
	// Priority is the beanstalkd priority to use when the copy is put back.
	Priority uint32
	// TTR is the beanstalkd time-to-run in seconds.
	TTR uint32
	// Headers carries optional metadata such as the trace context or a job type: keys are non-empty, at most
	// 64 headers. Header returns the first value for a key.
	Headers []Header
	// Body is the user's body, untouched. After Decode it aliases the decoded data: copy it to keep it beyond
	// the life of that buffer.
	Body []byte
	// Legacy is set by Decode for a go-queue body; such an envelope cannot be encoded.
	Legacy bool
}

// Header is one key/value pair of metadata carried in an envelope.
type Header struct{ Key, Value string }

// Keys is the signing key ring: Keys[0] signs, every key verifies, so a key can be rotated by first listing
// the new key second everywhere, then first. An empty ring means envelopes are written unsigned and read
// without checking a MAC. An empty key never verifies anything, since anyone could compute a MAC with it.
type Keys [][]byte

// Unc reports whether FlagUnc is set.
func (e *Envelope) Unc() bool { return e.Flags&FlagUnc != 0 }

// Header returns the value of the last header named key, and whether there
// was one: a repeated key reads as it does in the handler's Job.Headers, a
// map filled in order.
func (e *Envelope) Header(key string) (string, bool) {
	for i := len(e.Headers) - 1; i >= 0; i-- {
		if e.Headers[i].Key == key {
			return e.Headers[i].Value, true
		}
	}
	return "", false
}

// Overhead is the encoded size of e without its body, so that a producer can check, before touching the
// network, that len(e.Body) + Overhead(e, keys) fits the node's maximum job size.
func Overhead(e *Envelope, keys Keys) int {
	n := fixedSize + stringSize(e.ID) + uvarintLen(uint64(len(e.Headers)))
	for _, h := range e.Headers {
		n += stringSize(h.Key) + stringSize(h.Value)
	}
	if len(keys) > 0 {
		n += sigSize
	}
	return n
}

// Encode returns the encoding of e, signed with keys[0] when keys is not empty.
func Encode(e *Envelope, keys Keys) ([]byte, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrInvalid)
	}
	return AppendEncode(make([]byte, 0, Overhead(e, keys)+len(e.Body)), e, keys)
}

// AppendEncode appends the encoding of e to dst, signed with keys[0] when keys is not empty, and returns the
// extended slice. It allocates nothing when dst has room, so callers can reuse buffers. An invalid envelope
// gives an error wrapping ErrInvalid that names the field, and dst comes back unchanged.
func AppendEncode(dst []byte, e *Envelope, keys Keys) ([]byte, error) {
	if e == nil {
		return dst, fmt.Errorf("%w: nil envelope", ErrInvalid)
	}
	if err := e.validate(); err != nil {
		return dst, err
	}
	signed := len(keys) > 0
	if signed && len(keys[0]) == 0 {
		return dst, fmt.Errorf("%w: signing key keys[0] is empty", ErrInvalid)
	}

	// One growth up front, so appending the parts never reallocates halfway.
	dst = slices.Grow(dst, Overhead(e, keys)+len(e.Body))
	start := len(dst)
	var mode byte
	if signed {
		mode = modeSigned
	}
	dst = append(dst, magic...)
	dst = append(dst, version1, mode, e.Flags, e.Slot, e.Count)
	dst = binary.BigEndian.AppendUint32(dst, e.Priority)
	dst = binary.BigEndian.AppendUint32(dst, e.TTR)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.DueMs))
	dst = appendString(dst, e.ID)
	dst = binary.AppendUvarint(dst, uint64(len(e.Headers)))
	for _, h := range e.Headers {
		dst = appendString(dst, h.Key)
		dst = appendString(dst, h.Value)
	}
	if signed {
		fp := fingerprint(keys[0])
		dst = append(dst, fp[:]...)
		mac := sign(keys[0], dst[start:], e.Body)
		dst = append(dst, mac[:]...)
	}
	return append(dst, e.Body...), nil
}

// Accept names the bodies without a MAC that Decode still takes when keys are set: those written before the
// keys were, while they drain.
type Accept struct {
	// Legacy takes go-queue bodies.
	Legacy bool
	// Unsigned takes envelopes written without a key. A signed envelope must still verify.
	Unsigned bool
}

// Decode parses data, a job body read from beanstalkd. It never panics, whatever the input.
//
// With keys set, an envelope must be signed by one of them (ErrBadSignature); an unsigned one is refused with
// ErrUnsigned unless accept.Unsigned is true. Without keys, a signed envelope is accepted and its MAC ignored:
// a consumer without keys cannot check it, and refusing it would bury every job of producers that sign.
//
// A go-queue body ("<unixnano>/<body>") decodes as a Legacy envelope: ID LegacyID(data), DueMs the prefix in
// milliseconds, Count 0, TTR 5, Priority 2 (go-queue's normal priority), Body the bytes after the '/'. Without
// keys legacy bodies are always accepted; with keys they are refused with ErrLegacyRefused unless
// accept.Legacy is true.
//
// The structure is read first, then the signature is checked, then the field values, so a tampered envelope
// reports ErrBadSignature rather than whatever the tampering broke. The returned Body aliases data.
func Decode(data []byte, keys Keys, accept Accept) (Envelope, error) {
	if len(data) > 0 && isDigit(data[0]) {
		return decodeLegacy(data, keys, accept.Legacy)
	}
	if len(data) < len(magic) || string(data[:len(magic)]) != magic {
		return Envelope{}, ErrNotEnvelope
	}
	if len(data) == len(magic) {
		return Envelope{}, fmt.Errorf("%w: no version", ErrTruncated)
	}
	if v := data[len(magic)]; v != version1 {
		return Envelope{}, fmt.Errorf("%w: version %d", ErrVersion, v)
	}
	if len(data) < fixedSize {
		return Envelope{}, fmt.Errorf("%w: %d of %d fixed bytes", ErrTruncated, len(data), fixedSize)
	}
	mode := data[4]
	if mode&^modeSigned != 0 {
		return Envelope{}, fmt.Errorf("%w: mode %#02x", ErrVersion, mode)
	}
	e := Envelope{
		Flags:    data[5],
		Slot:     data[6],
		Count:    data[7],
		Priority: binary.BigEndian.Uint32(data[8:12]),
		TTR:      binary.BigEndian.Uint32(data[12:16]),
		DueMs:    int64(binary.BigEndian.Uint64(data[16:24])),
	}
	// The ID and every header are read as spans first, then cut from one string, so decoding costs one
	// allocation for all of them rather than one each.
	var spans [1 + 2*maxHeaders]span
	r := reader{data: data, off: fixedSize}
	spans[0] = r.span("id")
	nh := r.uvarint("header count")
	if r.err == nil && nh > maxHeaders {
		return Envelope{}, fmt.Errorf("%w: %d headers, at most %d", ErrInvalid, nh, maxHeaders)
	}
	for i := 0; i < 2*int(nh) && r.err == nil; i += 2 {
		spans[1+i] = r.span("header key")
		spans[2+i] = r.span("header value")
	}
	if r.err != nil {
		return Envelope{}, r.err
	}
	text := string(data[fixedSize:r.off])
	cut := func(s span) string { return text[s.lo-fixedSize : s.hi-fixedSize] }
	e.ID = cut(spans[0])
	if nh > 0 {
		e.Headers = make([]Header, nh)
		for i := range e.Headers {
			e.Headers[i] = Header{Key: cut(spans[1+2*i]), Value: cut(spans[2+2*i])}
		}
	}

	head := r.off
	signed := mode&modeSigned != 0
	if signed {
		if len(data)-head < sigSize {
			return Envelope{}, fmt.Errorf("%w: signature", ErrTruncated)
		}
		head += sigSize
	}
	e.Body = data[head:]
	if len(keys) > 0 && (signed || !accept.Unsigned) {
		if !signed {
			return Envelope{}, ErrUnsigned
		}
		if err := verify(keys, data[:r.off+fingerprintLen], data[r.off+fingerprintLen:head], e.Body); err != nil {
			return Envelope{}, err
		}
	}
	if err := e.validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// validate checks the rules every encoded envelope obeys; Decode applies the same ones, so anything Decode
// returns can be encoded again.
func (e *Envelope) validate() error {
	if e.Legacy {
		return fmt.Errorf("%w: a legacy envelope cannot be encoded", ErrInvalid)
	}
	if err := ValidID(e.ID); err != nil {
		return err
	}
	if e.Count > 0 && e.Slot >= e.Count {
		return fmt.Errorf("%w: slot %d is not below count %d", ErrInvalid, e.Slot, e.Count)
	}
	if len(e.Headers) > maxHeaders {
		return fmt.Errorf("%w: %d headers, at most %d", ErrInvalid, len(e.Headers), maxHeaders)
	}
	for i, h := range e.Headers {
		if h.Key == "" {
			return fmt.Errorf("%w: header %d has an empty key", ErrInvalid, i)
		}
	}
	return nil
}

// verify accepts the MAC when a key with the envelope's fingerprint produces it. head runs from the magic
// through the fingerprint.
func verify(keys Keys, head, mac, body []byte) error {
	fp := head[len(head)-fingerprintLen:]
	known := false
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		kfp := fingerprint(k)
		if subtle.ConstantTimeCompare(kfp[:], fp) != 1 {
			continue
		}
		known = true
		want := sign(k, head, body)
		if subtle.ConstantTimeCompare(want[:], mac) == 1 {
			return nil
		}
	}
	if !known {
		return fmt.Errorf("%w: no key has fingerprint %x", ErrBadSignature, fp)
	}
	return fmt.Errorf("%w: MAC mismatch", ErrBadSignature)
}

// reader walks the variable part of an envelope, keeping the first error so the caller checks once.
type reader struct {
	data []byte
	off  int
	err  error
}

// span is where a length-prefixed string lies in the data, length excluded.
type span struct{ lo, hi int }

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.data[r.off:])
	switch {
	case n == 0:
		r.err = fmt.Errorf("%w: %s", ErrTruncated, what)
		return 0
	case n < 0:
		r.err = fmt.Errorf("%w: %s: uvarint overflows 64 bits", ErrInvalid, what)
		return 0
	case n != uvarintLen(v):
		r.err = fmt.Errorf("%w: %s: uvarint not minimally encoded", ErrInvalid, what)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) span(what string) span {
	n := r.uvarint(what)
	if r.err != nil {
		return span{}
	}
	if n > uint64(len(r.data)-r.off) {
		r.err = fmt.Errorf("%w: %s", ErrTruncated, what)
		return span{}
	}
	s := span{lo: r.off, hi: r.off + int(n)}
	r.off = s.hi
	return s
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func stringSize(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// uvarintLen is the size of the minimal uvarint encoding of v.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
