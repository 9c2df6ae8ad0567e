package dq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
)

const (
	threeNodes = `
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
    - { Endpoint: 127.0.0.1:11301, Tube: orders }
    - { Endpoint: 127.0.0.1:11302, Tube: orders }
`
	localRedis = `
  Redis: { Host: 127.0.0.1:6379, Type: node }
`
)

// loadDq loads yaml the way a go-zero service loads its config file, with the
// DqConf as a named section.
func loadDq(t *testing.T, yaml string) DqConf {
	t.Helper()

	var c struct{ Dq DqConf }
	require.NoError(t, conf.LoadFromYamlBytes([]byte(yaml), &c))
	return c.Dq
}

func dqYaml(nodes, redis, extra string) string {
	return "Dq:\n" + nodes + redis + extra
}

func TestMinimalYamlHoldsEveryDefault(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(threeNodes, localRedis, ""))
	require.NoError(t, c.Validate())

	// Comparing against the constants keeps the tags and normalize's
	// defaults from drifting apart.
	require.Equal(t, defaultReplicas, c.Replicas)
	require.Equal(t, defaultMinWrites, c.MinWrites)
	require.Equal(t, defaultTTR, c.TTR)
	require.Equal(t, defaultWorkers, c.Workers)
	require.Equal(t, defaultMaxRetries, c.MaxRetries)
	require.Equal(t, defaultTimeout, c.Timeout)
	require.Equal(t, defaultShutdownTimeout, c.ShutdownTimeout)
	require.Equal(t, defaultDedupeTTL, c.DedupeTTL)
	require.Equal(t, defaultHistory, c.History)
	require.Equal(t, defaultKeyPrefix, c.KeyPrefix)
	require.Equal(t, defaultDialTimeout, c.DialTimeout)
	require.Equal(t, defaultIOTimeout, c.IOTimeout)
	require.Equal(t, defaultMaxJobSize, c.MaxJobSize)
	require.Equal(t, defaultRetryBackoff, c.RetryBackoff)
	require.Equal(t, defaultMaxRetryBackoff, c.MaxRetryBackoff)
	require.Empty(t, c.SigningKeys)
	require.False(t, c.AcceptLegacy)
	require.False(t, c.AcceptUnsigned)

	// The documented values, so that a changed constant is a visible change.
	require.Equal(t, 3, c.Replicas)
	require.Equal(t, 2, c.MinWrites)
	require.Equal(t, 30*time.Second, c.TTR)
	require.Equal(t, 16, c.Workers)
	require.Equal(t, 5, c.MaxRetries)
	require.Equal(t, time.Minute, c.Timeout)
	require.Equal(t, 3*time.Second, c.ShutdownTimeout)
	require.Equal(t, 24*time.Hour, c.DedupeTTL)
	require.Equal(t, time.Hour, c.History)
	require.Equal(t, "zerodq", c.KeyPrefix)
	require.Equal(t, time.Second, c.DialTimeout)
	require.Equal(t, 2*time.Second, c.IOTimeout)
	require.Equal(t, 65535, c.MaxJobSize)
	require.Equal(t, time.Second, c.RetryBackoff)
	require.Equal(t, 10*time.Minute, c.MaxRetryBackoff)

	n, err := c.normalize()
	require.NoError(t, err)
	require.Equal(t, c, n, "a loaded three-node config needs no change")
}

func TestSingleNodeWritesOneCopyAndNeedsOneAck(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(`
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
`, localRedis, ""))

	n, err := c.normalize()
	require.NoError(t, err)
	require.Equal(t, 1, n.Replicas)
	require.Equal(t, 1, n.MinWrites)
	require.Equal(t, defaultReplicas, c.Replicas, "the caller's config is untouched")
}

func TestTwoNodesWriteTwoCopiesAndNeedBoth(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(`
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
    - { Endpoint: 127.0.0.1:11301, Tube: orders }
`, localRedis, ""))

	n, err := c.normalize()
	require.NoError(t, err)
	require.Equal(t, 2, n.Replicas)
	require.Equal(t, 2, n.MinWrites)
}

func TestMoreNodesThanReplicasKeepReplicasAndMinWrites(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(`
  Beanstalks:
    - { Endpoint: 10.0.0.1:11300, Tube: orders }
    - { Endpoint: 10.0.0.2:11300, Tube: orders }
    - { Endpoint: 10.0.0.3:11300, Tube: orders }
    - { Endpoint: 10.0.0.4:11300, Tube: orders }
    - { Endpoint: 10.0.0.5:11300, Tube: orders }
`, localRedis, `
  Replicas: 4
  MinWrites: 3
`))

	n, err := c.normalize()
	require.NoError(t, err)
	require.Equal(t, 4, n.Replicas)
	require.Equal(t, 3, n.MinWrites)
}

func TestYamlDurationsAndTuningValuesLoad(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(threeNodes, `
  Redis: { Host: "127.0.0.1:7000,127.0.0.1:7001", Type: cluster }
`, `
  TTR: 45s
  Timeout: 2m30s
  ShutdownTimeout: 2500ms
  DedupeTTL: 72h
  DialTimeout: 300ms
  IOTimeout: 1.5s
  RetryBackoff: 250ms
  MaxRetryBackoff: 1h
  Workers: 64
  MaxRetries: 9
  MaxJobSize: 1048576
  KeyPrefix: billing:dq
  SigningKeys: [new-key, old-key]
  AcceptLegacy: true
  AcceptUnsigned: true
`))
	require.NoError(t, c.Validate())

	require.Equal(t, 45*time.Second, c.TTR)
	require.Equal(t, 150*time.Second, c.Timeout)
	require.Equal(t, 2500*time.Millisecond, c.ShutdownTimeout)
	require.Equal(t, 72*time.Hour, c.DedupeTTL)
	require.Equal(t, 300*time.Millisecond, c.DialTimeout)
	require.Equal(t, 1500*time.Millisecond, c.IOTimeout)
	require.Equal(t, 250*time.Millisecond, c.RetryBackoff)
	require.Equal(t, time.Hour, c.MaxRetryBackoff)
	require.Equal(t, 64, c.Workers)
	require.Equal(t, 9, c.MaxRetries)
	require.Equal(t, 1048576, c.MaxJobSize)
	require.Equal(t, "billing:dq", c.KeyPrefix)
	require.Equal(t, []string{"new-key", "old-key"}, c.SigningKeys)
	require.True(t, c.AcceptLegacy)
	require.True(t, c.AcceptUnsigned)
	require.Equal(t, redis.ClusterType, c.Redis.Type)
}

func TestConfigBuiltInCodeNormalizesZeroFieldsButMaxRetriesToDefaults(t *testing.T) {
	t.Parallel()

	c := DqConf{
		Beanstalks: []Beanstalk{
			{Endpoint: "127.0.0.1:11300", Tube: "orders"},
			{Endpoint: "127.0.0.1:11301", Tube: "orders"},
			{Endpoint: "127.0.0.1:11302", Tube: "orders"},
		},
		Redis: redis.RedisConf{Host: "127.0.0.1:6379"},
	}
	require.NoError(t, c.Validate())

	n, err := c.normalize()
	require.NoError(t, err)

	// The same config through yaml is the reference: both paths must agree,
	// but for MaxRetries and History, whose zero means no retry, no summary.
	loaded := loadDq(t, dqYaml(threeNodes, localRedis, "  MaxRetries: 0\n  History: 0s\n"))
	loaded.Redis = redis.RedisConf{Host: "127.0.0.1:6379", Type: redis.NodeType}
	require.Equal(t, loaded, n)

	require.Empty(t, c.Redis.Type, "the caller's config is untouched")
	require.Zero(t, c.TTR, "the caller's config is untouched")
}

func TestNormalizedConfigDoesNotShareTheCallersSlices(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(threeNodes, localRedis, "  SigningKeys: [k1]\n"))
	n, err := c.normalize()
	require.NoError(t, err)

	n.Beanstalks[0].Tube = "changed"
	n.SigningKeys[0] = "changed"
	require.Equal(t, "orders", c.Beanstalks[0].Tube)
	require.Equal(t, "k1", c.SigningKeys[0])
}

func TestValidateAcceptsUnusualButValidNodes(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(`
  Beanstalks:
    - { Endpoint: "[::1]:11300", Tube: "a-b+c/d;e.f$g_h(i)J9" }
    - { Endpoint: beanstalk-1.internal:65535, Tube: orders }
    - { Endpoint: 127.0.0.1:1, Tube: "`+strings.Repeat("t", 199)+`" }
`, localRedis, `
  Replicas: 3
  MinWrites: 3
  TTR: 3s
  Workers: 10000
  MaxJobSize: 512
  RetryBackoff: 5s
  MaxRetryBackoff: 5s
`))
	require.NoError(t, c.Validate())
}

func TestValidateRejectsEachBadFieldByName(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		nodes string // the Beanstalks section; threeNodes if empty
		redis string // the Redis section; localRedis if empty
		extra string
		// edit changes the loaded config, for values go-zero's conf itself
		// refuses to load.
		edit  func(*DqConf)
		field string
	}{
		{name: "no nodes", nodes: "  Beanstalks: []\n", field: "Beanstalks"},
		{name: "empty endpoint", nodes: nodes(`""`, "orders"), field: "Beanstalks[0].Endpoint"},
		{name: "endpoint without port", nodes: nodes("localhost", "orders"), field: "Beanstalks[0].Endpoint"},
		{name: "endpoint without host", nodes: nodes(`":11300"`, "orders"), field: "Beanstalks[0].Endpoint"},
		{name: "port not a number", nodes: nodes("localhost:beanstalk", "orders"), field: "Beanstalks[0].Endpoint"},
		{name: "port with sign", nodes: nodes("localhost:+80", "orders"), field: "Beanstalks[0].Endpoint"},
		{name: "port zero", nodes: nodes("localhost:0", "orders"), field: "Beanstalks[0].Endpoint"},
		{name: "port too large", nodes: nodes("localhost:65536", "orders"), field: "Beanstalks[0].Endpoint"},
		{name: "empty tube", nodes: nodes("localhost:11300", `""`), field: "Beanstalks[0].Tube"},
		{name: "tube with space", nodes: nodes("localhost:11300", `"a b"`), field: "Beanstalks[0].Tube"},
		{name: "tube starting with dash", nodes: nodes("localhost:11300", "-orders"), field: "Beanstalks[0].Tube"},
		{name: "tube with star", nodes: nodes("localhost:11300", `"orders*"`), field: "Beanstalks[0].Tube"},
		{name: "tube not ascii", nodes: nodes("localhost:11300", "commandes-été"), field: "Beanstalks[0].Tube"},
		{
			name:  "tube one byte longer than the nodes take",
			nodes: nodes("localhost:11300", strings.Repeat("t", 200)),
			field: "Beanstalks[0].Tube",
		},
		{
			name: "bad second node",
			nodes: `
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
    - { Endpoint: 127.0.0.1:11301, Tube: "a b" }
`,
			field: "Beanstalks[1].Tube",
		},
		{
			name: "same endpoint and tube twice",
			nodes: `
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
    - { Endpoint: 127.0.0.1:11301, Tube: orders }
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
`,
			field: "Beanstalks[2].Endpoint",
		},
		{
			name: "same endpoint with another tube",
			nodes: `
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
    - { Endpoint: 127.0.0.1:11300, Tube: invoices }
`,
			field: "Beanstalks[1].Endpoint",
		},
		{
			name: "same endpoint spelled differently",
			nodes: `
  Beanstalks:
    - { Endpoint: Beanstalk.Local:11300, Tube: orders }
    - { Endpoint: beanstalk.local:011300, Tube: orders }
`,
			field: "Beanstalks[1].Endpoint",
		},
		{name: "empty redis host", redis: `  Redis: { Host: "", Type: node }` + "\n", field: "Redis.Host"},
		{
			name:  "redis type neither node nor cluster",
			edit:  func(c *DqConf) { c.Redis.Type = "sentinel" },
			field: "Redis.Type",
		},
		{name: "negative replicas", extra: "  Replicas: -1\n", field: "Replicas"},
		{name: "more replicas than the claim store has slots", extra: "  Replicas: 53\n", field: "Replicas"},
		{name: "negative min writes", extra: "  MinWrites: -1\n", field: "MinWrites"},
		{name: "min writes above replicas", extra: "  Replicas: 2\n  MinWrites: 3\n", field: "MinWrites"},
		{name: "min writes above default replicas", extra: "  MinWrites: 4\n", field: "MinWrites"},
		{name: "negative ttr", extra: "  TTR: -30s\n", field: "TTR"},
		{name: "ttr under three seconds", extra: "  TTR: 2999ms\n", field: "TTR"},
		{name: "negative workers", extra: "  Workers: -1\n", field: "Workers"},
		{name: "too many workers", extra: "  Workers: 10001\n", field: "Workers"},
		{name: "negative max retries", extra: "  MaxRetries: -1\n", field: "MaxRetries"},
		{name: "negative timeout", extra: "  Timeout: -1s\n", field: "Timeout"},
		{name: "negative shutdown timeout", extra: "  ShutdownTimeout: -1s\n", field: "ShutdownTimeout"},
		{name: "negative dedupe ttl", extra: "  DedupeTTL: -1h\n", field: "DedupeTTL"},
		{name: "negative history", extra: "  History: -1m\n", field: "History"},
		{name: "key prefix with open brace", extra: "  KeyPrefix: \"dq{a\"\n", field: "KeyPrefix"},
		{name: "key prefix with close brace", extra: "  KeyPrefix: \"dq}a\"\n", field: "KeyPrefix"},
		{name: "key prefix with space", extra: "  KeyPrefix: \"my dq\"\n", field: "KeyPrefix"},
		{name: "key prefix with tab", extra: "  KeyPrefix: \"my\\tdq\"\n", field: "KeyPrefix"},
		{name: "negative dial timeout", extra: "  DialTimeout: -1s\n", field: "DialTimeout"},
		{name: "negative io timeout", extra: "  IOTimeout: -1s\n", field: "IOTimeout"},
		{name: "max job size too small", extra: "  MaxJobSize: 511\n", field: "MaxJobSize"},
		{name: "negative max job size", extra: "  MaxJobSize: -1\n", field: "MaxJobSize"},
		{name: "negative retry backoff", extra: "  RetryBackoff: -1s\n", field: "RetryBackoff"},
		{name: "negative max retry backoff", extra: "  MaxRetryBackoff: -1s\n", field: "MaxRetryBackoff"},
		{
			name:  "max retry backoff below retry backoff",
			extra: "  RetryBackoff: 2s\n  MaxRetryBackoff: 1s\n",
			field: "MaxRetryBackoff",
		},
		{
			name:  "default max retry backoff below retry backoff",
			extra: "  RetryBackoff: 11m\n",
			field: "MaxRetryBackoff",
		},
		{name: "empty signing key", extra: "  SigningKeys: [k1, \"\"]\n", field: "SigningKeys[1]"},
		{
			name:  "first problem in field order wins",
			extra: "  Workers: -1\n  TTR: 1s\n  SigningKeys: [\"\"]\n",
			field: "TTR",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			c := loadDq(t, dqYaml(
				cmp.Or(tt.nodes, threeNodes), cmp.Or(tt.redis, localRedis), tt.extra))
			if tt.edit != nil {
				tt.edit(&c)
			}

			err := c.Validate()
			require.ErrorIs(t, err, ErrBadConfig)
			var cerr *ConfigError
			require.ErrorAs(t, err, &cerr)
			require.Equal(t, tt.field, cerr.Field)
			require.NotEmpty(t, cerr.Reason)
			require.True(t, strings.HasPrefix(err.Error(), "dq: bad config: "+tt.field+" = "), err.Error())

			_, nerr := c.normalize()
			require.Equal(t, err, nerr, "normalize rejects what Validate rejects")
		})
	}
}

func TestConfigErrorNamesFieldValueAndReason(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(`
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
    - { Endpoint: 127.0.0.1:11301, Tube: "a b" }
`, localRedis, ""))

	err := c.Validate()
	require.EqualError(t, err, `dq: bad config: Beanstalks[1].Tube = "a b": invalid tube name`)
	var cerr *ConfigError
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, "a b", cerr.Value)

	c = loadDq(t, dqYaml(threeNodes, localRedis, "  TTR: 2s\n"))
	require.EqualError(t, c.Validate(), "dq: bad config: TTR = 2s: must be at least 3s")
}

func TestConfigErrorMatchesOnlyErrBadConfig(t *testing.T) {
	t.Parallel()

	err := error(&ConfigError{Field: "Workers", Value: -1, Reason: "must be between 1 and 10000"})
	require.ErrorIs(t, err, ErrBadConfig)
	require.NotErrorIs(t, err, errors.New("dq: bad config"))
	require.ErrorIs(t, fmt.Errorf("new producer: %w", err), ErrBadConfig, "a wrapped ConfigError still matches")
}

// nodes returns a Beanstalks section with one node.
func nodes(endpoint, tube string) string {
	return "\n  Beanstalks:\n    - { Endpoint: " + endpoint + ", Tube: " + tube + " }\n"
}

func TestReplicasUpToTheClaimStoreSlotsAreValid(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(threeNodes, localRedis, "  Replicas: 52\n"))
	require.NoError(t, c.Validate())
}

func TestExplicitZeroHistoryKeepsNoSummary(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(threeNodes, localRedis, "  History: 0s\n"))
	n, err := c.normalize()
	require.NoError(t, err)
	require.Zero(t, n.History, "an explicit 0 is kept: a finished job's record goes with its last copy")

	c = loadDq(t, dqYaml(threeNodes, localRedis, "  History: 10m\n"))
	n, err = c.normalize()
	require.NoError(t, err)
	require.Equal(t, 10*time.Minute, n.History)
}

func TestExplicitZeroMaxRetriesMeansNoRetry(t *testing.T) {
	t.Parallel()

	c := loadDq(t, dqYaml(threeNodes, localRedis, "  MaxRetries: 0\n"))
	require.NoError(t, c.Validate())
	n, err := c.normalize()
	require.NoError(t, err)
	require.Zero(t, n.MaxRetries, "an explicit 0 is kept: the first failure buries the job")

	c = loadDq(t, dqYaml(threeNodes, localRedis, ""))
	n, err = c.normalize()
	require.NoError(t, err)
	require.Equal(t, 5, n.MaxRetries, "the key left out takes the tag's default")
}

func TestConfigFilledByGoZeroHoldsTheYamlDefaults(t *testing.T) {
	t.Parallel()

	var c DqConf
	require.NoError(t, conf.FillDefault(&c))
	c.Beanstalks = []Beanstalk{
		{Endpoint: "127.0.0.1:11300", Tube: "orders"},
		{Endpoint: "127.0.0.1:11301", Tube: "orders"},
		{Endpoint: "127.0.0.1:11302", Tube: "orders"},
	}
	c.Redis.Host = "127.0.0.1:6379"

	loaded := loadDq(t, dqYaml(threeNodes, localRedis, ""))
	require.Equal(t, loaded, c)
	n, err := c.normalize()
	require.NoError(t, err)
	require.Equal(t, c, n)
}

// yamlFor renders the nodes and Redis of c as a Dq section, for tests that
// load their config the way a service does.
func yamlFor(c DqConf, extra string) string {
	var b strings.Builder
	b.WriteString("Dq:\n  Beanstalks:\n")
	for _, n := range c.Beanstalks {
		fmt.Fprintf(&b, "    - { Endpoint: %q, Tube: %q }\n", n.Endpoint, n.Tube)
	}
	fmt.Fprintf(&b, "  Redis: { Host: %q, Type: %s }\n", c.Redis.Host, c.Redis.Type)
	fmt.Fprintf(&b, "  KeyPrefix: %q\n", c.KeyPrefix)
	return b.String() + extra
}

func TestConsumerBuriesAfterOneFailureWithMaxRetriesZero(t *testing.T) {
	t.Parallel()

	c := loadDq(t, yamlFor(sharedConf(t), "  MaxRetries: 0\n  RetryBackoff: 20ms\n"))
	l := newLedger()
	startConsumer(t, c, l.handler(func(context.Context, Job) error { return errors.New("always") }))
	id, err := newTestProducer(t, c).Delay([]byte("no retry"), 0)
	require.NoError(t, err)

	dqtest.Eventually(t, 20*time.Second, func() bool {
		r, d, rs, b := countJobs(t, c)
		return b == 1 && r+d+rs == 0
	}, "one buried copy, no other copy")
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Equal(t, []int{1}, l.attempts[id], "one run, no retry")
	require.Equal(t, "X", recordOf(t, c, id)["st"])
}

func TestTubeOfTheLongestNameTheNodesTakeWorks(t *testing.T) {
	t.Parallel()

	c := sharedConf(t)
	tube := c.Beanstalks[0].Tube
	tube += strings.Repeat("t", 199-len(tube))
	for i := range c.Beanstalks {
		c.Beanstalks[i].Tube = tube
	}
	require.NoError(t, c.Validate())

	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	id, err := newTestProducer(t, c).Delay([]byte("long tube"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(id) == 1 }, "job done")
	awaitNoCopies(t, c, 10*time.Second, "copies deleted")

	c.Beanstalks[0].Tube += "t"
	err = c.Validate()
	var cerr *ConfigError
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, "Beanstalks[0].Tube", cerr.Field)
}

func TestNormalizedFillsDefaultsAndQueueNameIgnoresNodeOrder(t *testing.T) {
	t.Parallel()
	c := DqConf{
		Beanstalks: []Beanstalk{{Endpoint: "127.0.0.1:11301", Tube: "b"}, {Endpoint: "127.0.0.1:11300", Tube: "a"}},
		Redis:      redis.RedisConf{Host: "127.0.0.1:6379"},
	}
	n, err := c.Normalized()
	if err != nil {
		t.Fatal(err)
	}
	if n.DedupeTTL != defaultDedupeTTL || n.KeyPrefix != defaultKeyPrefix || n.Redis.Type != redis.NodeType {
		t.Fatalf("defaults not filled: DedupeTTL %v, KeyPrefix %q, Redis.Type %q", n.DedupeTTL, n.KeyPrefix, n.Redis.Type)
	}
	if n.Replicas != 2 {
		t.Fatalf("Replicas %d, want 2 (capped by the nodes)", n.Replicas)
	}
	swapped := c
	swapped.Beanstalks = []Beanstalk{c.Beanstalks[1], c.Beanstalks[0]}
	if c.QueueName() != "a,b" || swapped.QueueName() != "a,b" {
		t.Fatalf("QueueName %q / %q, want a,b for both orders", c.QueueName(), swapped.QueueName())
	}
	if _, err := (DqConf{}).Normalized(); err == nil {
		t.Fatal("Normalized accepted a config without nodes")
	}
}
