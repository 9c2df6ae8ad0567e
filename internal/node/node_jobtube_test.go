package node

import (
	"context"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestJobTubeNamesTheTubeAJobIsIn(t *testing.T) {
	t.Parallel()
	addr, tube := dqtest.Shared(t).Nodes[0].Addr(), dqtest.Name(t)
	n := New(addr, tube, Options{})
	defer n.Close()
	ctx := context.Background()

	p, err := n.Put(ctx, []byte("mine"), 0, time.Hour, time.Minute)
	require.NoError(t, err)
	got, err := n.JobTube(ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, tube, got)

	other, err := beanstalk.NewTube(raw(t, addr), tube+"-other").Put([]byte("theirs"), 0, time.Hour, time.Minute)
	require.NoError(t, err)
	got, err = n.JobTube(ctx, other)
	require.NoError(t, err)
	require.Equal(t, tube+"-other", got, "a number may name a job of another tube")

	require.NoError(t, n.Delete(ctx, p))
	require.NoError(t, n.DeleteID(ctx, other))
	_, err = n.JobTube(ctx, p.ID)
	require.ErrorIs(t, err, ErrNotFound)
	require.True(t, IsDefinite(err))
}
