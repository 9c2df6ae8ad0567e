package envelope

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math"
)

const (
	legacyIDPrefix = "gq-"
	// go-queue puts every job with a 5 s TTR and its normal priority 2.
	legacyTTR      = 5
	legacyPriority = 2
)

// LegacyID is the job ID zerodq gives a go-queue body: "gq-" followed by the MD5 hex of the raw body, the
// whole "<unixnano>/<body>" bytes, so every copy of the same go-queue job gets the same ID.
func LegacyID(raw []byte) string { return legacyIDPrefix + LegacyLockKey(raw) }

// LegacyLockKey is the Redis key go-queue's consumer locks to run a raw body once: the MD5 hex of the whole
// "<unixnano>/<body>" bytes. Taking the same lock lets a fleet mixing both consumers run a legacy job once.
func LegacyLockKey(raw []byte) string {
	sum := md5.Sum(raw)
	return hex.EncodeToString(sum[:])
}

// decodeLegacy reads "<unixnano>/<body>", the body go-queue's dq producer writes.
func decodeLegacy(data []byte, keys Keys, acceptLegacy bool) (Envelope, error) {
	var nanos int64
	i := 0
	for ; i < len(data) && isDigit(data[i]); i++ {
		d := int64(data[i] - '0')
		if nanos > (math.MaxInt64-d)/10 {
			return Envelope{}, fmt.Errorf("%w: go-queue time prefix overflows", ErrNotEnvelope)
		}
		nanos = nanos*10 + d
	}
	if i == len(data) || data[i] != '/' {
		return Envelope{}, fmt.Errorf("%w: digits not followed by '/'", ErrNotEnvelope)
	}
	if len(keys) > 0 && !acceptLegacy {
		return Envelope{}, ErrLegacyRefused
	}
	return Envelope{
		ID:       LegacyID(data),
		DueMs:    ceilMs(nanos),
		Priority: legacyPriority,
		TTR:      legacyTTR,
		Body:     data[i+1:],
		Legacy:   true,
	}, nil
}

// ceilMs converts go-queue's nanosecond due time (never negative: only digits
// are read) to milliseconds, rounded up: rounded down, the job would fire up to
// 1 ms early. Dividing first keeps math.MaxInt64 from overflowing.
func ceilMs(nanos int64) int64 {
	ms := nanos / 1e6
	if nanos%1e6 != 0 {
		ms++
	}
	return ms
}
