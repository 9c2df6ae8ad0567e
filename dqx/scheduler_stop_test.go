package dqx

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// Stop waits for the top-up in progress, which writes the fires it recorded.
// A node frozen meanwhile costs each put that reaches it IOTimeout, and a put
// begun just before the 3 s write budget ends takes Stop to 3 s + IOTimeout
// (5 s with the default 2 s), past go-zero's 4.5 s shutdown window. Stop must
// return after a short grace for the writes, one put in flight and a Redis
// call.
func TestSchedulerStopReturnsInTimeWhileANodeIsFrozen(t *testing.T) {
	t.Parallel() // the node it freezes is its own
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	c.IOTimeout = time.Second
	// Enough fires that writing them takes longer than the write budget.
	cc := CronConf{Lookahead: 10 * time.Minute, Refresh: time.Minute}
	for i := range 5 {
		cc.Entries = append(cc.Entries, CronEntry{Name: fmt.Sprintf("e%d", i), Spec: "@every 1s"})
	}
	s := startScheduler(t, c, cc)
	dqtest.Eventually(t, 10*time.Second, func() bool { return len(stateFires(t, c, s.Scheduler)) > 0 },
		"the fires recorded: the writes begin")

	require.NoError(t, env.Nodes[0].Pause())
	t.Cleanup(func() { _ = env.Nodes[0].Resume() })
	began := time.Now()
	s.stop()
	took := time.Since(began)
	require.Less(t, took, stopWriteGrace+c.IOTimeout+time.Second, "Stop took %v", took)
}
