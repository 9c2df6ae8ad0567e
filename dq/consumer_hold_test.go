package dq

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// Copies reserved before their due time wait in memory until then (a
// beanstalkd delay is whole seconds, so a copy is ready up to a second
// early). A consumer under a backlog holds thousands: each must cost its
// memory only, not a goroutine and a timer, and still run at its due time,
// never early, and once. Not parallel: it counts the process's goroutines.
func TestConsumerHoldsCopiesBeforeTheirDueTimeWithoutAGoroutineEach(t *testing.T) {
	c := sharedConf(t)
	l := newLedger()
	base := runtime.NumGoroutine()
	cs := startConsumer(t, c, l.handler(nil)).(*consumer)
	p := newTestProducer(t, c)

	// Due just under two seconds ahead: the copies get a 1 s delay and are
	// then held for most of a second, together.
	const jobs = 200
	due := time.Now().Add(1990 * time.Millisecond)
	ids := make([]string, jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < jobs; i += 8 {
				id, err := p.At([]byte("held"), due)
				mu.Lock()
				ids[i], errs = id, append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	// The peak of copies in hand before the due time, and the goroutines
	// then.
	peakHeld, goroutines := 0, 0
	for time.Until(due) > 50*time.Millisecond {
		if n := cs.gate.inHand(); n > peakHeld {
			peakHeld, goroutines = n, runtime.NumGoroutine()
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.GreaterOrEqual(t, peakHeld, 2*jobs, "most copies were held before their due time")
	require.Less(t, goroutines-base, peakHeld/4,
		"%d copies held with %d goroutines more than before the consumer started", peakHeld, goroutines-base)

	dqtest.Eventually(t, 10*time.Second, func() bool { return l.allDone(ids) }, "every held job runs")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.early, "handlers started before their due time")
	for _, id := range ids {
		require.Equal(t, 1, l.starts[id], "job %s", id)
	}
}
