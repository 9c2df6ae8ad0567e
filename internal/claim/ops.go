package claim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The operational indexes of a queue (keys.go): small structures kept beside
// the job records so that an operator's questions never scan keys or run a
// script over a whole set. Each call is a plain command or a pipeline on one
// queue's keys, which share a Redis Cluster slot.

// DeadEntry is one entry of a queue's dead-letter index: a job whose copy is
// about to be, or was, buried as its dead letter.
type DeadEntry struct {
	ID  string `json:"-"`
	Ref string `json:"ref"` // the buried copy (CopyRef)
	At  int64  `json:"at"`  // bury time, Unix ms
	Att int    `json:"att"` // the job's attempt when it died
	Cls string `json:"cls,omitempty"`
	Msg string `json:"msg,omitempty"`
}

// DeadAdd writes e to the dead-letter index (an intent, written before the
// bury). An entry of the job already there is replaced when replace is
// true, else kept: a copy that knows nothing of the job's last run must not
// overwrite what the run that killed it wrote.
func (x *Index) DeadAdd(ctx context.Context, tube string, e DeadEntry, replace bool) error {
	if e.ID == "" {
		return fmt.Errorf("%w: dead entry without a job ID", ErrBadArg)
	}
	info, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		z := goredis.Z{Score: float64(e.At), Member: e.ID}
		if replace {
			p.ZAdd(ctx, x.s.DeadKey(tube), z)
			p.HSet(ctx, x.s.DeadInfoKey(tube), e.ID, info)
		} else {
			p.ZAddNX(ctx, x.s.DeadKey(tube), z)
			p.HSetNX(ctx, x.s.DeadInfoKey(tube), e.ID, info)
		}
		return nil
	})
}

// DeadRemove drops the entries of ids from the dead-letter index.
func (x *Index) DeadRemove(ctx context.Context, tube string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRem(ctx, x.s.DeadKey(tube), members...)
		p.HDel(ctx, x.s.DeadInfoKey(tube), ids...)
		return nil
	})
}

// DeadPage reads at most count entries of the dead-letter index buried at or
// after fromMs, in burial order, skipping the first offset of them: one
// ZRANGEBYSCORE ... LIMIT and one HMGET, never the whole set. An entry whose
// info is missing comes with its ID and time only.
func (x *Index) DeadPage(ctx context.Context, tube string, fromMs int64, offset, count int) ([]DeadEntry, error) {
	if count <= 0 {
		return nil, nil
	}
	var zs []goredis.Z
	err := x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRangeByScoreWithScores(ctx, x.s.DeadKey(tube), &goredis.ZRangeBy{
			Min: strconv.FormatInt(fromMs, 10), Max: "+inf", Offset: int64(offset), Count: int64(count),
		})
		return nil
	}, func(cmds []goredis.Cmder) {
		zs = cmds[0].(*goredis.ZSliceCmd).Val()
	})
	if err != nil || len(zs) == 0 {
		return nil, err
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i], _ = z.Member.(string)
	}
	infos, err := x.DeadInfo(ctx, tube, ids...)
	if err != nil {
		return nil, err
	}
	out := make([]DeadEntry, len(zs))
	for i, z := range zs {
		e, ok := infos[ids[i]]
		if !ok {
			e = DeadEntry{ID: ids[i]}
		}
		e.At = int64(z.Score)
		out[i] = e
	}
	return out, nil
}

// DeadInfo reads the index entries of ids; IDs with no info are absent from
// the map.
func (x *Index) DeadInfo(ctx context.Context, tube string, ids ...string) (map[string]DeadEntry, error) {
	out := make(map[string]DeadEntry, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var vals []any
	err := x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HMGet(ctx, x.s.DeadInfoKey(tube), ids...)
		return nil
	}, func(cmds []goredis.Cmder) {
		vals = cmds[0].(*goredis.SliceCmd).Val()
	})
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var e DeadEntry
		if json.Unmarshal([]byte(str), &e) != nil {
			continue
		}
		e.ID = ids[i]
		out[ids[i]] = e
	}
	return out, nil
}

// DeadCount counts the entries buried at or after fromMs (ZCOUNT).
func (x *Index) DeadCount(ctx context.Context, tube string, fromMs int64) (int, error) {
	var n int64
	err := x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZCount(ctx, x.s.DeadKey(tube), strconv.FormatInt(fromMs, 10), "+inf")
		return nil
	}, func(cmds []goredis.Cmder) {
		n = cmds[0].(*goredis.IntCmd).Val()
	})
	return int(n), err
}

// ConsumerTTL is how long a registry entry (a consumer's or a producer's)
// lives unless its process writes it again; readers drop members of the
// registry set older than that.
const ConsumerTTL = 15 * time.Second

// PutConsumer writes consumer id's registry entry (JSON) at nowMs.
func (x *Index) PutConsumer(ctx context.Context, tube, id string, entry []byte, nowMs int64) error {
	return x.putEntry(ctx, x.s.ConsumersKey(tube), x.s.ConsumerKey(tube, id), id, entry, nowMs)
}

// RemoveConsumer deletes consumer id's registry entry.
func (x *Index) RemoveConsumer(ctx context.Context, tube, id string) error {
	return x.removeEntry(ctx, x.s.ConsumersKey(tube), x.s.ConsumerKey(tube, id), id)
}

// Consumers drops the registry members not written since ConsumerTTL before
// nowMs and returns the live entries (JSON), oldest write first. The
// registry holds one member per running consumer process.
func (x *Index) Consumers(ctx context.Context, tube string, nowMs int64) ([][]byte, error) {
	return x.entries(ctx, x.s.ConsumersKey(tube), func(id string) string { return x.s.ConsumerKey(tube, id) }, nowMs)
}

// PutProducer writes producer id's registry entry (JSON) at nowMs.
func (x *Index) PutProducer(ctx context.Context, tube, id string, entry []byte, nowMs int64) error {
	return x.putEntry(ctx, x.s.ProducersKey(tube), x.s.ProducerKey(tube, id), id, entry, nowMs)
}

// RemoveProducer deletes producer id's registry entry.
func (x *Index) RemoveProducer(ctx context.Context, tube, id string) error {
	return x.removeEntry(ctx, x.s.ProducersKey(tube), x.s.ProducerKey(tube, id), id)
}

// Producers is Consumers for the producer registry.
func (x *Index) Producers(ctx context.Context, tube string, nowMs int64) ([][]byte, error) {
	return x.entries(ctx, x.s.ProducersKey(tube), func(id string) string { return x.s.ProducerKey(tube, id) }, nowMs)
}

// putEntry writes a registry entry: its string, expiring after
// ConsumerTTL, and its member of the registry set scored nowMs.
func (x *Index) putEntry(ctx context.Context, setKey, key, id string, entry []byte, nowMs int64) error {
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, key, entry, ConsumerTTL)
		p.ZAdd(ctx, setKey, goredis.Z{Score: float64(nowMs), Member: id})
		return nil
	})
}

// removeEntry deletes a registry entry and its member.
func (x *Index) removeEntry(ctx context.Context, setKey, key, id string) error {
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, key)
		p.ZRem(ctx, setKey, id)
		return nil
	})
}

// entries drops the members of a registry set not written since
// ConsumerTTL before nowMs and reads the entries of the others.
func (x *Index) entries(ctx context.Context, setKey string, keyOf func(id string) string,
	nowMs int64) ([][]byte, error) {
	var ids []string
	err := x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, setKey, "-inf", "("+strconv.FormatInt(nowMs-ConsumerTTL.Milliseconds(), 10))
		p.ZRange(ctx, setKey, 0, -1)
		return nil
	}, func(cmds []goredis.Cmder) {
		ids = cmds[1].(*goredis.StringSliceCmd).Val()
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var out [][]byte
	err = x.pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, id := range ids {
			p.Get(ctx, keyOf(id))
		}
		return nil
	}, func(cmds []goredis.Cmder) {
		for _, c := range cmds {
			if v, err := c.(*goredis.StringCmd).Bytes(); err == nil {
				out = append(out, v)
			}
		}
	})
	return out, err
}

// OpTTL is how long a bulk operation's hash is kept after its last write.
const OpTTL = 24 * time.Hour

// PutOp sets fields (name, value pairs) of bulk operation id's hash and
// keeps it for OpTTL from now.
func (x *Index) PutOp(ctx context.Context, tube, id string, fields ...any) error {
	key := x.s.OpKey(tube, id)
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, key, fields...)
		p.PExpire(ctx, key, OpTTL)
		return nil
	})
}

// Op reads bulk operation id's hash; empty when there is none.
func (x *Index) Op(ctx context.Context, tube, id string) (map[string]string, error) {
	var out map[string]string
	err := x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HGetAll(ctx, x.s.OpKey(tube, id))
		return nil
	}, func(cmds []goredis.Cmder) {
		out = cmds[0].(*goredis.MapStringStringCmd).Val()
	})
	return out, err
}

// SetPaused pauses the queue with info (JSON), until ClearPaused.
func (x *Index) SetPaused(ctx context.Context, tube string, info []byte) error {
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, x.s.PausedKey(tube), info, 0)
		return nil
	})
}

// ClearPaused lifts the queue's pause.
func (x *Index) ClearPaused(ctx context.Context, tube string) error {
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, x.s.PausedKey(tube))
		return nil
	})
}

// Paused returns the queue's pause info (JSON), nil when it is not paused.
func (x *Index) Paused(ctx context.Context, tube string) ([]byte, error) {
	var v []byte
	err := x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Get(ctx, x.s.PausedKey(tube))
		return nil
	}, func(cmds []goredis.Cmder) {
		v, _ = cmds[0].(*goredis.StringCmd).Bytes()
	})
	return v, err
}

// AuditMax is about how many entries the audit stream keeps.
const AuditMax = 10000

// AuditRecord is one entry of the audit stream.
type AuditRecord struct {
	ID    string // the stream entry's ID: its time in ms, "-", a sequence
	Who   string
	What  string
	Queue string
}

// AuditAdd appends an action to the audit stream (XADD MAXLEN ~ AuditMax).
func (x *Index) AuditAdd(ctx context.Context, who, what, queue string) error {
	return x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.XAdd(ctx, &goredis.XAddArgs{
			Stream: x.s.AuditKey(), MaxLen: AuditMax, Approx: true,
			Values: []any{"who", who, "what", what, "queue", queue},
		})
		return nil
	})
}

// AuditList reads the latest n entries of the audit stream, newest first.
func (x *Index) AuditList(ctx context.Context, n int) ([]AuditRecord, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []AuditRecord
	err := x.pipelined(ctx, func(p goredis.Pipeliner) error {
		p.XRevRangeN(ctx, x.s.AuditKey(), "+", "-", int64(n))
		return nil
	}, func(cmds []goredis.Cmder) {
		for _, m := range cmds[0].(*goredis.XMessageSliceCmd).Val() {
			r := AuditRecord{ID: m.ID}
			r.Who, _ = m.Values["who"].(string)
			r.What, _ = m.Values["what"].(string)
			r.Queue, _ = m.Values["queue"].(string)
			out = append(out, r)
		}
	})
	return out, err
}

// Index runs the commands of a queue's operational indexes (keys.go). It is
// safe for concurrent use.
type Index struct {
	s    *Store
	side goredis.UniversalClient // nil: the store's go-zero client
}

// Index returns the store's indexes, reached through its go-zero client.
func (s *Store) Index() *Index { return &Index{s: s} }

// IndexOn returns the store's indexes reached through c instead: a consumer
// writes its registry entry and reads the pause flag on a client of its own,
// apart from the breaker its claims go through.
func (s *Store) IndexOn(c goredis.UniversalClient) *Index { return &Index{s: s, side: c} }

// pipelined sends the commands fn queues in one round trip and hands their
// replies to read, when given. A missing key (goredis.Nil) is no error.
func (x *Index) pipelined(ctx context.Context, fn func(goredis.Pipeliner) error,
	read ...func([]goredis.Cmder)) error {
	var cmds []goredis.Cmder
	wrap := func(p goredis.Pipeliner) error {
		if err := fn(p); err != nil {
			return err
		}
		var err error
		cmds, err = p.Exec(ctx)
		return err
	}
	var err error
	if x.side != nil {
		_, err = x.side.Pipelined(ctx, wrap)
	} else {
		err = x.s.rds.PipelinedCtx(ctx, wrap)
	}
	if err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	for _, r := range read {
		r(cmds)
	}
	return nil
}
