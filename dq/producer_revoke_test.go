package dq

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
)

func TestRevokingAGoQueueIDAfterANodeRestartWithoutBinlogLeavesOtherJobsAlone(t *testing.T) {
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	node0 := c.Beanstalks[0]

	// go-queue put two jobs on node 0 and handed out their IDs: numbers 1
	// and 2 of a fresh node.
	conn := dialNode(t, node0.Endpoint)
	var refs []string
	for i := range 2 {
		raw := []byte(strconv.FormatInt(time.Now().Add(time.Hour).UnixNano(), 10) + "/old " + strconv.Itoa(i))
		jid, err := (&beanstalk.Tube{Conn: conn, Name: node0.Tube}).Put(raw, 1, time.Hour, time.Minute)
		require.NoError(t, err)
		refs = append(refs, fmt.Sprintf("%s/%s/%d", node0.Endpoint, node0.Tube, jid))
	}
	require.Equal(t, []string{node0.Endpoint + "/" + node0.Tube + "/1", node0.Endpoint + "/" + node0.Tube + "/2"}, refs)

	// The node restarts without a binlog: both are gone and numbering starts
	// again. Number 1 goes to a go-queue job of another tube, number 2 to a
	// zerodq job of this queue.
	require.NoError(t, e.Nodes[0].Restart())
	conn = dialNode(t, node0.Endpoint)
	other := node0.Tube + "-other"
	otherRaw := []byte(strconv.FormatInt(time.Now().Add(time.Hour).UnixNano(), 10) + "/another service's job")
	jid, err := (&beanstalk.Tube{Conn: conn, Name: other}).Put(otherRaw, 1, time.Hour, time.Minute)
	require.NoError(t, err)
	require.EqualValues(t, 1, jid)
	p := openProducer(t, c)
	id, err := p.Delay([]byte("new job"), 0)
	require.NoError(t, err)
	settle(t, p)
	body, err := conn.Peek(2)
	require.NoError(t, err)
	env, err := envelope.Decode(body, nil, envelope.Accept{})
	require.NoError(t, err)
	require.Equal(t, id, env.ID, "number 2 on node 0 is now the zerodq job")

	// Neither old ID names a job any more.
	for _, ref := range refs {
		require.ErrorIs(t, p.Revoke(ref), ErrMaybeDone, ref)
	}
	got, err := conn.Peek(1)
	require.NoError(t, err, "the other tube's job is still there")
	require.Equal(t, otherRaw, got)
	require.Empty(t, recordOf(t, c, envelope.LegacyID(otherRaw)), "no record for the other tube's job")
	require.Equal(t, 3, countCopies(t, c), "every copy of the zerodq job is still there")
	require.NotEqual(t, "V", recordOf(t, c, id)["st"])

	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(id) == 1 }, "the zerodq job ran")
}
