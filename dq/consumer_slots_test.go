package dq

import (
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
)

// putRaw puts body as it is into the tube of node b, ready at once.
func putRaw(t *testing.T, b Beanstalk, body []byte) uint64 {
	t.Helper()
	conn := dialNode(t, b.Endpoint)
	id, err := (&beanstalk.Tube{Conn: conn, Name: b.Tube}).Put(body, 1, 0, time.Minute)
	require.NoError(t, err)
	return id
}

func TestConsumerBuriesEnvelopesWithMoreSlotsThanTheClaimStoreTakesAndKeepsRunning(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	// The codec takes slots and counts up to 255; the claim store up to
	// claim.MaxSlots.
	for _, e := range []envelope.Envelope{
		{ID: "slot-too-high", DueMs: time.Now().UnixMilli(), Slot: claim.MaxSlots, TTR: 60},
		{ID: "count-too-high", DueMs: time.Now().UnixMilli(), Slot: 1, Count: claim.MaxSlots + 1, TTR: 60},
	} {
		body, err := envelope.Encode(&e, nil)
		require.NoError(t, err)
		putRaw(t, c.Beanstalks[0], body)
	}
	dqtest.Eventually(t, 10*time.Second, func() bool {
		_, _, _, buried := countJobs(t, c)
		return buried == 2
	}, "both envelopes buried as malformed")

	p := newTestProducer(t, c)
	var ids []string
	for range 5 {
		id, err := p.Delay([]byte("fine"), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	dqtest.Eventually(t, 10*time.Second, func() bool { return l.allDone(ids) }, "the normal jobs still run")
	l.mu.Lock()
	require.Zero(t, l.starts["slot-too-high"]+l.starts["count-too-high"], "a malformed envelope never runs")
	l.mu.Unlock()
}
