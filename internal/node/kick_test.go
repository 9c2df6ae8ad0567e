package node

import (
	"context"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestKickIDMakesABuriedJobReadyAndJobStatTellsItsState(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t)
	n := New(addr, tube, Options{})
	defer n.Close()
	ctx := context.Background()

	p, err := n.Put(ctx, []byte("dead"), 0, 0, time.Minute)
	require.NoError(t, err)
	bc := raw(t, addr)
	ts := beanstalk.NewTubeSet(bc, tube)
	id, _, err := ts.Reserve(time.Second)
	require.NoError(t, err)
	require.Equal(t, p.ID, id)
	require.NoError(t, bc.Bury(id, 0))

	st, err := n.JobStat(ctx, id)
	require.NoError(t, err)
	require.Equal(t, JobStat{Tube: tube, State: "buried", Buries: 1}, st)

	require.NoError(t, n.KickID(ctx, id))
	st, err = n.JobStat(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "ready", st.State)
	require.Equal(t, 1, st.Kicks)

	err = n.KickID(ctx, id)
	require.ErrorIs(t, err, ErrNotFound, "a ready job cannot be kicked")
	require.NoError(t, n.DeleteID(ctx, id))
	_, err = n.JobStat(ctx, id)
	require.ErrorIs(t, err, ErrNotFound)
}
