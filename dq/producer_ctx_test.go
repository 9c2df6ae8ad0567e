package dq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// An enqueue waits for the reply of every put it launched, and a put that
// was sent is bounded by IOTimeout, not by the caller's context: with one of
// three nodes frozen, DelayCtx answers after IOTimeout although two nodes
// acknowledged within milliseconds and the caller's deadline was far
// shorter. A request handler with a 300 ms budget blocks for seconds.
func TestDelayCtxHonoursItsDeadlineWhenANodeIsFrozen(t *testing.T) {
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.IOTimeout = 3 * time.Second
	p := openProducer(t, c)
	_, err := p.Delay([]byte("warm"), time.Hour)
	require.NoError(t, err)
	require.NoError(t, e.Nodes[2].Pause())
	t.Cleanup(func() { _ = e.Nodes[2].Resume() })

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _ = p.DelayCtx(ctx, []byte("x"), time.Hour)
	took := time.Since(start)
	require.Less(t, took, time.Second, "DelayCtx with a 300 ms deadline took %v (IOTimeout %v)", took, c.IOTimeout)
}
