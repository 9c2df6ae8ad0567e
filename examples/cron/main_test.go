package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
	"github.com/zerodq/zerodq/dqx/dqtest"
)

func TestMain(m *testing.M) { dqtest.Main(m) }

// syncBuffer is an io.Writer the handlers of several replicas share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestSampleConfigLoadsAndValidates(t *testing.T) {
	t.Parallel()
	var c Config
	require.NoError(t, conf.Load(filepath.Join("etc", "cron.yaml"), &c))
	require.NoError(t, c.Dq.Validate())
	require.NoError(t, c.Cron.Validate())
	require.Len(t, c.Cron.Entries, 2)
	require.Equal(t, dqx.MissedRunOnce, c.Cron.Entries[0].Missed)
}

func TestTwoReplicasRunEachFireAndEachReminderOnce(t *testing.T) {
	t.Parallel()
	env := dqtest.Shared(t)
	name := dqtest.TestName(t)
	c := Config{
		Dq: dq.DqConf{Redis: redis.RedisConf{Host: env.Redis.Addr(), Type: redis.NodeType}, KeyPrefix: name},
		Cron: dqx.CronConf{
			Entries:   []dqx.CronEntry{{Name: "remind-unpaid", Spec: "* * * * * *", Body: "alice bob"}},
			Lookahead: 2 * time.Second,
			Refresh:   500 * time.Millisecond,
		},
	}
	for _, ep := range env.Endpoints() {
		c.Dq.Beanstalks = append(c.Dq.Beanstalks, dq.Beanstalk{Endpoint: ep, Tube: name})
	}

	var out syncBuffer
	for range 2 {
		group, producer, err := newServices(c, &out)
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			group.Start()
		}()
		t.Cleanup(func() {
			group.Stop()
			<-done
			_ = producer.Close()
		})
	}

	// Three fires, each fanned out into two typed reminders.
	counts := func() map[string]int {
		m := map[string]int{}
		for _, l := range out.lines() {
			m[l]++
		}
		return m
	}
	dqtest.Eventually(t, 10*time.Second, func() bool {
		fires := 0
		for l := range counts() {
			if strings.HasPrefix(l, "fire remind-unpaid") {
				fires++
			}
		}
		return fires >= 3
	}, "three fires")
	var fires []string
	for l, n := range counts() {
		require.Equal(t, 1, n, "line %q printed %d times", l, n)
		if at, ok := strings.CutPrefix(l, "fire remind-unpaid at "); ok {
			fires = append(fires, at)
		}
	}
	// Each fire fans out into one reminder per account, each run once.
	dqtest.Eventually(t, 5*time.Second, func() bool {
		m := counts()
		for _, at := range fires {
			if m["reminder for alice (fire "+at+")"] != 1 || m["reminder for bob (fire "+at+")"] != 1 {
				return false
			}
		}
		return true
	}, "a reminder per account and fire")
}
