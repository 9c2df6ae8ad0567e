package dq

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// earlyLedger records, for jobs whose body is the Unix nanosecond before
// which they must not start, each start that came before it.
type earlyLedger struct {
	mu    sync.Mutex
	runs  map[string]int
	early []string
}

func newEarlyLedger() *earlyLedger { return &earlyLedger{runs: map[string]int{}} }

func (l *earlyLedger) handler() ConsumeHandler {
	return WithHandle(func(ctx context.Context, body []byte) error {
		now := time.Now()
		notBefore, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: body %q", ErrSkipRetry, body)
		}
		j, _ := JobFromContext(ctx)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.runs[j.ID]++
		if d := time.Unix(0, notBefore).Sub(now); d > 0 {
			l.early = append(l.early, fmt.Sprintf("%s started %v early", j.ID, d))
		}
		return nil
	})
}

func (l *earlyLedger) ran(ids []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if l.runs[id] == 0 {
			return false
		}
	}
	return true
}

func TestNeverEarlyForSubMillisecondAt(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 64
	l := newEarlyLedger()
	startConsumer(t, c, l.handler())
	p := newTestProducer(t, c)

	// Due times spread over half a second from 1.2 s on, each with a
	// sub-millisecond part, as time.Now().Add(d) gives.
	const jobs = 200
	base := time.Now().Add(1200 * time.Millisecond)
	ids := make([]string, 0, jobs)
	for range jobs {
		at := base.Add(time.Duration(rand.Int64N(int64(500 * time.Millisecond))))
		if at.Nanosecond()%int(time.Millisecond) == 0 {
			at = at.Add(time.Microsecond)
		}
		id, err := p.At([]byte(strconv.FormatInt(at.UnixNano(), 10)), at)
		require.NoError(t, err)
		ids = append(ids, id)
	}

	dqtest.Eventually(t, 20*time.Second, func() bool { return l.ran(ids) }, "every job ran")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.early, "%d of %d jobs started before their time", len(l.early), jobs)
}

func TestNeverEarlyForDelayCountedFromTheCall(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	c.Workers = 64
	l := newEarlyLedger()
	startConsumer(t, c, l.handler())
	p := newTestProducer(t, c)

	// The body is the local time just before the call plus the delay: on a
	// host in step with Redis (this one), no job may start before it.
	const jobs = 200
	ids := make([]string, 0, jobs)
	for range jobs {
		d := 1200*time.Millisecond + time.Duration(rand.Int64N(int64(500*time.Millisecond)))
		notBefore := time.Now().Add(d)
		id, err := p.Delay([]byte(strconv.FormatInt(notBefore.UnixNano(), 10)), d)
		require.NoError(t, err)
		ids = append(ids, id)
	}

	dqtest.Eventually(t, 20*time.Second, func() bool { return l.ran(ids) }, "every job ran")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.early, "%d of %d jobs started before their time", len(l.early), jobs)
}

func TestProducerNeverEnqueuesOnTheLocalClockBeforeReadingRedisTime(t *testing.T) {
	dqtest.VerifyNoLeaks(t)
	e := dqtest.NewEnv(t, dqtest.EnvOptions{})
	c := testConf(t, e)
	c.Redis.NonBlock = true // the producer starts while Redis is down
	e.Redis.Kill()
	p := openProducer(t, c)

	start := time.Now()
	_, err := p.Delay([]byte("x"), time.Hour)
	require.ErrorIs(t, err, ErrNoRedisTime, "no Redis time read yet: the local clock is not trusted")
	require.Less(t, time.Since(start), clockSyncTimeout+time.Second)
	require.Zero(t, countCopies(t, c), "nothing written")

	require.NoError(t, e.Redis.Restart())
	var id string
	dqtest.Eventually(t, 20*time.Second, func() bool {
		id, err = p.Delay([]byte("x"), time.Hour)
		return err == nil
	}, "an enqueue once Redis is back: %v", err)
	require.NotEmpty(t, id)
	settle(t, p)
	require.Equal(t, 3, countCopies(t, c))
}
