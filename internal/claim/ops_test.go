package claim

import (
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestDeadIndexPagesInBurialOrderAndForgetsRemovedEntries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := b.store.Index()
	for i := range 7 {
		id := "j" + strconv.Itoa(i)
		require.NoError(t, x.DeadAdd(b.ctx, b.tube, DeadEntry{ID: id, Ref: "n:1/" + strconv.Itoa(i),
			At: int64(1000 + i/2), Att: i + 1, Cls: "error", Msg: "boom " + id}, true))
	}
	n, err := x.DeadCount(b.ctx, b.tube, 0)
	require.NoError(t, err)
	require.Equal(t, 7, n)
	n, err = x.DeadCount(b.ctx, b.tube, 1002)
	require.NoError(t, err)
	require.Equal(t, 3, n, "j4, j5 at 1002 and j6 at 1003")

	var got []string
	for off := 0; ; off += 3 {
		page, err := x.DeadPage(b.ctx, b.tube, 0, off, 3)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		require.LessOrEqual(t, len(page), 3)
		for _, e := range page {
			got = append(got, e.ID)
		}
	}
	require.Equal(t, []string{"j0", "j1", "j2", "j3", "j4", "j5", "j6"}, got)

	page, err := x.DeadPage(b.ctx, b.tube, 1003, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []DeadEntry{{ID: "j6", Ref: "n:1/6", At: 1003, Att: 7, Cls: "error", Msg: "boom j6"}}, page)

	// An entry without run info keeps the one there; a replacing one wins.
	require.NoError(t, x.DeadAdd(b.ctx, b.tube, DeadEntry{ID: "j6", Ref: "n:2/9", At: 2000}, false))
	infos, err := x.DeadInfo(b.ctx, b.tube, "j6")
	require.NoError(t, err)
	require.Equal(t, "boom j6", infos["j6"].Msg)
	require.NoError(t, x.DeadAdd(b.ctx, b.tube, DeadEntry{ID: "j6", Ref: "n:2/9", At: 2000, Cls: "skip"}, true))
	page, err = x.DeadPage(b.ctx, b.tube, 1003, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []DeadEntry{{ID: "j6", Ref: "n:2/9", At: 2000, Cls: "skip"}}, page)

	require.NoError(t, x.DeadRemove(b.ctx, b.tube, "j6", "j0"))
	n, err = x.DeadCount(b.ctx, b.tube, 0)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	infos, err = x.DeadInfo(b.ctx, b.tube, "j0", "j1")
	require.NoError(t, err)
	require.NotContains(t, infos, "j0")
	require.Equal(t, "n:1/1", infos["j1"].Ref)
}

func TestConsumerRegistryDropsEntriesNotWrittenWithinTheTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := b.store.Index()
	now := b.now(t)
	require.NoError(t, x.PutConsumer(b.ctx, b.tube, "old", []byte(`{"id":"old"}`), now-ConsumerTTL.Milliseconds()-1))
	require.NoError(t, x.PutConsumer(b.ctx, b.tube, "a", []byte(`{"id":"a"}`), now-10))
	require.NoError(t, x.PutConsumer(b.ctx, b.tube, "b", []byte(`{"id":"b"}`), now))
	got, err := x.Consumers(b.ctx, b.tube, now)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)}, got)
	require.NoError(t, x.RemoveConsumer(b.ctx, b.tube, "a"))
	got, err = x.Consumers(b.ctx, b.tube, now)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte(`{"id":"b"}`)}, got)
}

func TestProducerRegistryDropsEntriesNotWrittenWithinTheTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := b.store.Index()
	now := b.now(t)
	require.NoError(t, x.PutProducer(b.ctx, b.tube, "old", []byte(`{"id":"old"}`), now-ConsumerTTL.Milliseconds()-1))
	require.NoError(t, x.PutProducer(b.ctx, b.tube, "a", []byte(`{"id":"a"}`), now-10))
	require.NoError(t, x.PutProducer(b.ctx, b.tube, "b", []byte(`{"id":"b"}`), now))
	require.NoError(t, x.PutConsumer(b.ctx, b.tube, "c", []byte(`{"id":"c"}`), now))
	got, err := x.Producers(b.ctx, b.tube, now)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)}, got, "producers only, live ones")
	require.NoError(t, x.RemoveProducer(b.ctx, b.tube, "a"))
	got, err = x.Producers(b.ctx, b.tube, now)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte(`{"id":"b"}`)}, got)
	ttl, err := b.rds.Ttl(b.store.ProducerKey(b.tube, "b"))
	require.NoError(t, err)
	require.InDelta(t, ConsumerTTL.Seconds(), ttl, 2, "an entry expires unless rewritten")
}

func TestBulkOpHashIsUpdatedAndKeptForADay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := b.store.Index()
	got, err := x.Op(b.ctx, b.tube, "0123456789abcdef")
	require.NoError(t, err)
	require.Empty(t, got, "no such op")
	require.NoError(t, x.PutOp(b.ctx, b.tube, "0123456789abcdef", "verb", "retry", "done", 0, "matched", 9))
	require.NoError(t, x.PutOp(b.ctx, b.tube, "0123456789abcdef", "done", 4))
	got, err = x.Op(b.ctx, b.tube, "0123456789abcdef")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"verb": "retry", "done": "4", "matched": "9"}, got)
	ttl, err := b.rds.Ttl(b.store.OpKey(b.tube, "0123456789abcdef"))
	require.NoError(t, err)
	require.InDelta(t, OpTTL.Seconds(), ttl, 60)
}

func TestPauseFlagIsSetReadAndCleared(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := b.store.Index()
	v, err := x.Paused(b.ctx, b.tube)
	require.NoError(t, err)
	require.Nil(t, v)
	require.NoError(t, x.SetPaused(b.ctx, b.tube, []byte(`{"by":"me"}`)))
	v, err = x.Paused(b.ctx, b.tube)
	require.NoError(t, err)
	require.Equal(t, `{"by":"me"}`, string(v))
	ttl, err := b.rds.TtlCtx(b.ctx, b.store.PausedKey(b.tube))
	require.NoError(t, err)
	require.Equal(t, -1, ttl, "a pause lasts until lifted")
	require.NoError(t, x.ClearPaused(b.ctx, b.tube))
	v, err = x.Paused(b.ctx, b.tube)
	require.NoError(t, err)
	require.Nil(t, v)
}

func TestAuditStreamListsNewestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := b.store.Index()
	require.NoError(t, x.AuditAdd(b.ctx, "ann@h", "pause", "q"))
	require.NoError(t, x.AuditAdd(b.ctx, "bob@h", "dead retry 3", "q"))
	got, err := x.AuditList(b.ctx, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "bob@h", got[0].Who)
	require.Equal(t, "dead retry 3", got[0].What)
	require.Equal(t, "q", got[0].Queue)
	require.Equal(t, "ann@h", got[1].Who)
	got, err = x.AuditList(b.ctx, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

func TestIndexesRunOnARedisClusterThroughEitherClient(t *testing.T) {
	t.Parallel()
	cluster := dqtest.NewRedisCluster(t)
	b := setupOn(t, redis.RedisConf{Host: cluster.Hosts(), Type: "cluster"})
	side := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: strings.Split(cluster.Hosts(), ",")})
	t.Cleanup(func() { _ = side.Close() })
	for _, x := range []*Index{b.store.Index(), b.store.IndexOn(side)} {
		tube := NewClaimID()
		for i := range 3 {
			require.NoError(t, x.DeadAdd(b.ctx, tube, DeadEntry{ID: "j" + strconv.Itoa(i), Ref: "n/1", At: int64(i)}, true))
		}
		page, err := x.DeadPage(b.ctx, tube, 1, 0, 10)
		require.NoError(t, err)
		require.Len(t, page, 2)
		require.Equal(t, "n/1", page[0].Ref)
		require.NoError(t, x.DeadRemove(b.ctx, tube, "j1"))
		n, err := x.DeadCount(b.ctx, tube, 0)
		require.NoError(t, err)
		require.Equal(t, 2, n)

		now := b.now(t)
		require.NoError(t, x.PutConsumer(b.ctx, tube, "a", []byte("A"), now))
		require.NoError(t, x.PutConsumer(b.ctx, tube, "b", []byte("B"), now))
		got, err := x.Consumers(b.ctx, tube, now)
		require.NoError(t, err)
		require.ElementsMatch(t, [][]byte{[]byte("A"), []byte("B")}, got)

		require.NoError(t, x.SetPaused(b.ctx, tube, []byte("P")))
		v, err := x.Paused(b.ctx, tube)
		require.NoError(t, err)
		require.Equal(t, "P", string(v))

		require.NoError(t, x.AuditAdd(b.ctx, "who", "what "+tube, tube))
		log, err := x.AuditList(b.ctx, 1)
		require.NoError(t, err)
		require.Equal(t, "what "+tube, log[0].What)
	}
}
