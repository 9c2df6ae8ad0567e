package dq

import (
	"errors"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// ErrQuorum promises that the job never runs. When the abort cannot reach
// Redis, that holds only if every copy written was deleted: a copy a
// consumer had already reserved (beanstalkd answers NOT_FOUND to a delete
// from another connection) runs, as a soak under Redis and node faults
// showed. The enqueue must then say the job may run, not ErrQuorum.
func TestAQuorumMissWhoseAbortFailsAndWhoseCopyIsTakenIsNotErrQuorum(t *testing.T) {
	env := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, env)
	c.MinWrites = 3
	p := newTestProducer(t, c) // samples Redis time while Redis is up

	// A consumer's connection waits in a reserve on the first node: the
	// copy put there is reserved at once and cannot be deleted by the
	// producer.
	conn, err := beanstalk.DialTimeout("tcp", c.Beanstalks[0].Endpoint, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	reserved := make(chan uint64, 1)
	go func() {
		id, _, err := beanstalk.NewTubeSet(conn, c.Beanstalks[0].Tube).Reserve(10 * time.Second)
		if err == nil {
			reserved <- id
		}
		close(reserved)
	}()
	require.True(t, dqtest.Await(5*time.Second, func() bool {
		st, err := (&beanstalk.Tube{Conn: dialNode(t, c.Beanstalks[0].Endpoint), Name: c.Beanstalks[0].Tube}).Stats()
		return err == nil && st["current-waiting"] == "1"
	}), "the reserve is not waiting")

	env.Nodes[2].Kill() // the quorum of 3 is missed
	env.Redis.Kill()    // and the abort cannot be recorded

	_, err = p.Delay([]byte("taken"), 0)
	require.Error(t, err)
	_, ok := <-reserved
	require.True(t, ok, "the copy was not reserved")
	require.False(t, errors.Is(err, ErrQuorum), "ErrQuorum although a reserved copy may run: %v", err)
	require.ErrorIs(t, err, ErrMaybeEnqueued)
}
