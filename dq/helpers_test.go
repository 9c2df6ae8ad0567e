package dq

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
	"github.com/zerodq/zerodq/internal/envelope"
)

// TestMain runs the package's tests against real servers and stops the shared
// ones at the end.
func TestMain(m *testing.M) {
	// Servers killed and paused on purpose make go-zero's Redis client log
	// every failed and slow call; ZERODQ_TEST_LOGS=1 shows them.
	if os.Getenv("ZERODQ_TEST_LOGS") == "" {
		logx.Disable()
	}
	dqtest.Main(m)
}

// testConf returns a DqConf for e's beanstalkd nodes and Redis, with a tube
// and a Redis key prefix of the test's own (so tests sharing servers stay out
// of each other's way), timeouts short enough for tests that kill or freeze
// servers (DialTimeout 300ms, IOTimeout 500ms), and every other field at its
// default, filled by go-zero's conf.FillDefault as a user's code would. Tests
// adjust the copy they get.
func testConf(t testing.TB, e *dqtest.Env) DqConf {
	t.Helper()
	name := dqtest.Name(t)
	var c DqConf
	require.NoError(t, conf.FillDefault(&c))
	c.Redis = redis.RedisConf{Host: e.Redis.Addr(), Type: redis.NodeType}
	c.KeyPrefix = name
	c.DialTimeout = 300 * time.Millisecond
	c.IOTimeout = 500 * time.Millisecond
	for _, ep := range e.Endpoints() {
		c.Beanstalks = append(c.Beanstalks, Beanstalk{Endpoint: ep, Tube: name})
	}
	return c
}

// sharedConf is testConf for the servers shared by every test of the process.
func sharedConf(t testing.TB) DqConf {
	t.Helper()
	return testConf(t, dqtest.Shared(t))
}

// dialNode opens a go-beanstalk connection to endpoint, closed when t ends.
func dialNode(t testing.TB, endpoint string) *beanstalk.Conn {
	t.Helper()
	conn, err := beanstalk.DialTimeout("tcp", endpoint, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// tubeCounts is the number of jobs per state in tube on endpoint; a tube
// that does not exist holds none.
type tubeCounts struct{ Ready, Delayed, Reserved, Buried int }

// Total counts the jobs in every state.
func (c tubeCounts) Total() int { return c.Ready + c.Delayed + c.Reserved + c.Buried }

// countTube reads the job counts of tube on endpoint with stats-tube.
func countTube(t testing.TB, endpoint, tube string) tubeCounts {
	t.Helper()
	conn := dialNode(t, endpoint)
	defer conn.Close()
	stats, err := (&beanstalk.Tube{Conn: conn, Name: tube}).Stats()
	if errors.Is(err, beanstalk.ErrNotFound) {
		return tubeCounts{}
	}
	require.NoError(t, err)
	n := func(k string) int {
		v, err := strconv.Atoi(stats[k])
		require.NoError(t, err, "stats-tube %s", k)
		return v
	}
	return tubeCounts{
		Ready:    n("current-jobs-ready"),
		Delayed:  n("current-jobs-delayed"),
		Reserved: n("current-jobs-reserved"),
		Buried:   n("current-jobs-buried"),
	}
}

// countCopies sums the jobs in c's tube over all of c's nodes.
func countCopies(t testing.TB, c DqConf) int {
	t.Helper()
	total := 0
	for _, b := range c.Beanstalks {
		total += countTube(t, b.Endpoint, b.Tube).Total()
	}
	return total
}

// storedCopy is one job found on a node, decoded.
type storedCopy struct {
	Endpoint string
	JobID    uint64
	Env      envelope.Envelope
	Stats    map[string]string // stats-job
}

// nodeCopies reads every job still on endpoint, a node of the test's own:
// beanstalkd numbers jobs from 1 across all tubes, so peeking 1..total-jobs
// finds them all. A body that is not an envelope fails the test.
func nodeCopies(t testing.TB, endpoint string) []storedCopy {
	t.Helper()
	conn := dialNode(t, endpoint)
	defer conn.Close()
	stats, err := conn.Stats()
	require.NoError(t, err)
	total, err := strconv.ParseUint(stats["total-jobs"], 10, 64)
	require.NoError(t, err)

	var copies []storedCopy
	for id := uint64(1); id <= total; id++ {
		body, err := conn.Peek(id)
		if errors.Is(err, beanstalk.ErrNotFound) {
			continue
		}
		require.NoError(t, err)
		env, err := envelope.Decode(body, nil, envelope.Accept{})
		require.NoError(t, err, "job %d on %s", id, endpoint)
		js, err := conn.StatsJob(id)
		require.NoError(t, err)
		copies = append(copies, storedCopy{Endpoint: endpoint, JobID: id, Env: env, Stats: js})
	}
	return copies
}

// recordOf returns the fields of a job's Redis record (empty when there is
// none).
func recordOf(t testing.TB, c DqConf, id string) map[string]string {
	t.Helper()
	rds, err := redis.NewRedis(c.Redis)
	require.NoError(t, err)
	fields, err := rds.Hgetall(c.KeyPrefix + ":" + c.claimTube() + ":" + id)
	require.NoError(t, err)
	return fields
}

// withClaimChunk makes the holder send at most n claims together.
func withClaimChunk(n int) ConsumerOption {
	return func(o *consumerOptions) { o.claimChunk = n }
}
