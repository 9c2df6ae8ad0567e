package claim

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/stores/redis"
)

// Record is a job's record as the scripts left it, read for people: its
// state, counters, times, owner, the copies its consumers met and the fate
// of each, its latest attempts and its last error.
type Record struct {
	State     string // P R W D X V
	Attempts  int    // att: attempts started
	Failures  int    // fail
	N         int    // slot count; 0 unknown
	DueMs     int64
	LeaseMs   int64  // R: the lease's end
	NotBefore int64  // W: the next attempt's earliest start (ms)
	By        string // consumer ID of the latest claim (that of its attempt)
	Writer    string // w: the WithID writer; "" for a generated ID
	Confirmed bool   // ok: the WithID enqueue was confirmed
	Why       string // V: revoke or abort
	DeadRef   string // bid: the dead letter's copy reference
	Copies    []CopyFate
	Runs      []Attempt // oldest first; at most the latest 20
	// LastError is the latest failure (Class "" when none), at ErrorAtMs.
	LastError Failure
	ErrorAtMs int64
	// TTLMs is how long the record lives on (-1: no TTL).
	TTLMs int64
	// Summary is set when every copy is gone and only the summary is kept
	// (WithHistory).
	Summary bool
}

// The fates of a copy, as c:<ref> holds them.
const (
	FateRan        = "r" // an attempt ran from it (told by the attempt, a<N>)
	FateSpare      = "s" // deleted as a spare of a finished job
	FateRevoked    = "v" // deleted because the job was revoked
	FateDeadLetter = "x" // kept buried as the job's dead letter
	FateExtraDead  = "e" // deleted: another copy is the dead letter
	FateDeleted    = "d" // deleted otherwise
)

// CopyFate is one copy of a job a consumer met: its reference (CopyRef) and
// its fate (Fate*).
type CopyFate struct {
	Ref  string
	Fate string
}

// Attempt is one attempt of a job: when and where it started, and, once
// its finish was recorded, when it ended and how (the Outcome words).
type Attempt struct {
	N       int
	StartMs int64
	By      string // consumer ID ("" unknown)
	Ref     string // the copy it ran from
	EndMs   int64  // 0 while running, or lapsed
	Outcome string // "" while running, or lapsed
}

// Record reads the record of job id in tube in one round trip (HGETALL and
// PTTL, pipelined; no script). ok is false when there is none.
func (s *Store) Record(ctx context.Context, tube, id string) (rec Record, ok bool, err error) {
	key := s.Key(tube, id)
	var all *goredis.MapStringStringCmd
	var ttl *goredis.DurationCmd
	err = s.rds.PipelinedCtx(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, key)
		ttl = p.PTTL(ctx, key)
		return nil
	})
	if err != nil {
		return Record{}, false, err
	}
	h := all.Val()
	if len(h) == 0 {
		return Record{}, false, nil
	}
	rec = parseRecord(h)
	rec.TTLMs = -1
	if d := ttl.Val(); d > 0 {
		rec.TTLMs = d.Milliseconds()
	}
	return rec, true, nil
}

func parseRecord(h map[string]string) Record {
	i64 := func(f string) int64 { v, _ := strconv.ParseInt(h[f], 10, 64); return v }
	rec := Record{
		State:     h["st"],
		Attempts:  int(i64("att")),
		Failures:  int(i64("fail")),
		N:         int(i64("n")),
		DueMs:     i64("due"),
		LeaseMs:   i64("lease"),
		NotBefore: i64("nb"),
		By:        h["b"+strconv.Itoa(int(i64("att")))],
		Writer:    h["w"],
		Confirmed: h["ok"] == "1",
		Why:       h["why"],
		DeadRef:   h["bid"],
		LastError: Failure{Class: h["err"], Message: h["em"]},
		ErrorAtMs: i64("et"),
	}
	_, owned := h["own"]
	rec.Summary = !owned && rec.N > 0 && i64("gone") == 1<<rec.N-1 && (rec.State == "D" || rec.State == "V")
	fates := make(map[string]string)
	for f, v := range h {
		if strings.HasPrefix(f, "c:") {
			fates[f[2:]] = v
			continue
		}
		if len(f) < 2 || f[0] != 'a' {
			continue
		}
		n, err := strconv.Atoi(f[1:])
		if err != nil || n <= 0 {
			continue
		}
		if a, ok := parseAttempt(n, v, h["b"+f[1:]], h["e"+f[1:]]); ok {
			rec.Runs = append(rec.Runs, a)
		}
	}
	// A copy an attempt ran from has run, whatever deleted it later; kept
	// buried as the dead letter, that is its fate now.
	for _, a := range rec.Runs {
		if fates[a.Ref] != FateDeadLetter {
			fates[a.Ref] = FateRan
		}
	}
	for ref, fate := range fates {
		rec.Copies = append(rec.Copies, CopyFate{Ref: ref, Fate: fate})
	}
	sort.Slice(rec.Copies, func(a, b int) bool { return refLess(rec.Copies[a].Ref, rec.Copies[b].Ref) })
	sort.Slice(rec.Runs, func(a, b int) bool { return rec.Runs[a].N < rec.Runs[b].N })
	return rec
}

// parseAttempt reads attempt n from its fields: a<N> "<startMs> <ref>",
// b<N> the consumer ID, e<N> "<endMs> <outcome>" ("" while running or
// lapsed).
func parseAttempt(n int, a, by, end string) (Attempt, bool) {
	startMs, ref, ok := strings.Cut(a, " ")
	if !ok {
		return Attempt{}, false
	}
	start, err := strconv.ParseInt(startMs, 10, 64)
	if err != nil {
		return Attempt{}, false
	}
	at := Attempt{N: n, StartMs: start, By: by, Ref: ref}
	if endMs, outcome, ok := strings.Cut(end, " "); ok {
		if at.EndMs, err = strconv.ParseInt(endMs, 10, 64); err == nil {
			at.Outcome = outcome
		}
	}
	return at, true
}

// SplitRef splits a copy reference (CopyRef) into its node and job number.
func SplitRef(ref string) (node string, jobNum uint64, err error) {
	k := strings.LastIndexByte(ref, '/')
	if k < 0 {
		return "", 0, fmt.Errorf("%w: copy reference %q", ErrBadReply, ref)
	}
	jobNum, err = strconv.ParseUint(ref[k+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: copy reference %q", ErrBadReply, ref)
	}
	return ref[:k], jobNum, nil
}

// refLess orders references by node, then by job number.
func refLess(a, b string) bool {
	na, ja, erra := SplitRef(a)
	nb, jb, errb := SplitRef(b)
	if erra != nil || errb != nil || na != nb {
		return a < b
	}
	return ja < jb
}
