package dq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReserveRoundTripsGrowUnderABacklogAndShrinkToATrickle(t *testing.T) {
	ask := 1
	for _, want := range []int{2, 4, 8, reserveBatch} {
		ask = nextAsk(ask, ask) // every copy asked for came
		require.Equal(t, want, ask)
	}
	require.Equal(t, 3, nextAsk(8, 3), "back to what came")
	require.Equal(t, 1, nextAsk(8, 0), "never below one")
	require.Equal(t, 2, nextAsk(1, 1))
	require.Equal(t, 1, nextAsk(2, 1), "a trickle asks for one, then two")
}

// A reserve that waits in beanstalkd holds back every request sent after it
// on its connection, the deletes of the copies reserved there among them: a
// job run while its loops waited for more jobs kept its copies reserved for
// up to a second after it finished, which under load held reserving back
// (copies in hand count against the gate) and made later jobs start late.
func TestCopiesOfAFinishedJobAreDeletedWithoutWaitingForAReserve(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	ran := make(chan time.Time, 1)
	startConsumer(t, c, WithHandle(func(context.Context, []byte) error {
		ran <- time.Now()
		return nil
	}))
	// Let every loop settle into waiting for jobs first.
	awaitNoCopies(t, c, 5*time.Second, "nothing in the tube")
	_, err := newTestProducer(t, c).Delay([]byte("one"), 0)
	require.NoError(t, err)
	var at time.Time
	select {
	case at = <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the job never ran")
	}
	awaitNoCopies(t, c, 10*time.Second, "every copy deleted")
	require.Less(t, time.Since(at), 800*time.Millisecond,
		"the copies were deleted only once the reserves sent before their deletes timed out")
}
