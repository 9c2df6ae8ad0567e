package dq

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/node"
)

// Beanstalk is one beanstalkd node and the tube on it.
type Beanstalk struct {
	// Endpoint is the node's address as host:port.
	Endpoint string
	// Tube is the beanstalkd tube the jobs go to on this node: 1 to 199
	// bytes of letters, digits and -+/;.$_(), not starting with '-'.
	Tube string
}

// DqConf configures a Producer and a Consumer. It is meant to be loaded with
// go-zero's conf package as a named field of the service config
// (`Dq dq.DqConf`): the tag default of a field applies when its key is left
// out, and a value written out stands, 0 included.
//
// A DqConf built in Go gets the same defaults from go-zero's conf.FillDefault
// called on the zero value (it refuses a struct with any field set), before
// setting Beanstalks, Redis and the rest:
//
//	var c dq.DqConf
//	_ = conf.FillDefault(&c)
//	c.Beanstalks = []dq.Beanstalk{{Endpoint: "127.0.0.1:11300", Tube: "orders"}}
//	c.Redis.Host = "127.0.0.1:6379"
//
// Fields for which zero means nothing (Replicas, MinWrites, TTR, Workers,
// Timeout, ShutdownTimeout, DedupeTTL, KeyPrefix, the I/O and Redis timeouts,
// MaxJobSize and the back-offs) are also filled with their default when left
// zero. MaxRetries and History are not: 0 means that a job is never retried,
// and that a finished job's record goes with its last copy. A negative
// value is an error.
type DqConf struct {
	// Beanstalks are the nodes a job's copies are spread over; at least one,
	// each endpoint listed once.
	Beanstalks []Beanstalk
	// Redis holds the job records that make execution exactly-once. If Type
	// is empty, it is node.
	Redis redis.RedisConf
	// Replicas is how many copies of a job are written, each on its own node;
	// capped by the number of nodes, at most 52 (the copies a job's Redis
	// record can track). If zero, default 3.
	Replicas int `json:",default=3"`
	// MinWrites is how many copies must be acknowledged for an enqueue to
	// succeed; it may not exceed Replicas and is capped by the effective
	// Replicas (so 1 with a single node). If zero, default 2.
	MinWrites int `json:",default=2"`
	// TTR is the lease: how long a claimed job stays with its consumer without
	// a heartbeat. It is also the beanstalkd TTR, in whole seconds. At least
	// 3s. If zero, default 30s.
	TTR time.Duration `json:",default=30s"`
	// Workers is how many handlers a consumer process runs at once, 1 to
	// 10000. If zero, default 16.
	Workers int `json:",default=16"`
	// MaxRetries is how many failures of a job are retried: the
	// (MaxRetries+1)th failure buries it, so 0 buries a job at its first
	// failure. Default 5 when the key is left out of the config file (or
	// when the DqConf was filled by conf.FillDefault); a zero set in Go or
	// written in yaml means no retry.
	MaxRetries int `json:",default=5"`
	// Timeout bounds one run of a handler. If zero, default 60s.
	Timeout time.Duration `json:",default=60s"`
	// ShutdownTimeout is how long Stop waits for running handlers before it
	// cancels them; the default leaves room inside go-zero's shutdown window
	// of about 4.5s. If zero, default 3s.
	ShutdownTimeout time.Duration `json:",default=3s"`
	// DedupeTTL is how long a job's record lives past its due time: the window
	// in which WithID deduplicates and Revoke answers precisely. If zero,
	// default 24h.
	DedupeTTL time.Duration `json:",default=24h"`
	// History is how long a finished or revoked job stays inspectable, as a
	// compact summary of its record (attempts, copies, last error; a few
	// hundred bytes), once every copy of it is gone; never past DedupeTTL.
	// 0 deletes the record with the last copy. Default 1h.
	History time.Duration `json:",default=1h"`
	// KeyPrefix starts every Redis key. It may not hold '{' or '}', so that
	// keys spread over a Redis Cluster, nor whitespace. If empty, default
	// zerodq.
	KeyPrefix string `json:",default=zerodq"`
	// DialTimeout bounds a dial to a beanstalkd node. If zero, default 1s.
	DialTimeout time.Duration `json:",default=1s"`
	// IOTimeout bounds one beanstalkd request and its reply, beyond the wait a
	// reserve asks for. If zero, default 2s.
	IOTimeout time.Duration `json:",default=2s"`
	// RedisTimeout bounds one Redis call of the claim protocol (a script, or
	// a round trip of many) and of the scheduler; a caller whose ctx ends
	// sooner stops waiting then. If zero, default 3s.
	RedisTimeout time.Duration `json:",default=3s"`
	// MaxJobSize is the nodes' maximum job size in bytes (beanstalkd -z); the
	// envelope counts against it. At least 512. If zero, default 65535.
	MaxJobSize int `json:",default=65535"`
	// RetryBackoff is the delay before the first retry; it doubles with each
	// further failure, with jitter. If zero, default 1s.
	RetryBackoff time.Duration `json:",default=1s"`
	// MaxRetryBackoff caps the retry delay; at least RetryBackoff. If zero,
	// default 10m.
	MaxRetryBackoff time.Duration `json:",default=10m"`
	// SigningKeys are HMAC keys for the envelopes: the first signs, any of
	// them verifies, so keys can be rotated. Empty means unsigned.
	SigningKeys []string `json:",optional"`
	// AcceptLegacy makes a consumer with SigningKeys still run unsigned
	// go-queue bodies, which carry no HMAC.
	AcceptLegacy bool `json:",optional"`
	// AcceptUnsigned makes a consumer with SigningKeys still run zerodq
	// envelopes that carry no HMAC. It is for the switch to signing: set it
	// with SigningKeys while the jobs enqueued unsigned drain, and turn it
	// off once the last of them has run (DedupeTTL past its due time, to be
	// sure). A signed envelope must verify either way.
	AcceptUnsigned bool `json:",optional"`
}

// The defaults of DqConf's tuning fields. The tags on DqConf carry the same
// values for conf.Load and conf.FillDefault; the tests check that both agree.
// defaultMaxRetries and defaultHistory are the tags' only: withDefaults keeps
// a zero MaxRetries or History.
const (
	defaultReplicas        = 3
	defaultMinWrites       = 2
	defaultTTR             = 30 * time.Second
	defaultWorkers         = 16
	defaultMaxRetries      = 5
	defaultHistory         = time.Hour
	defaultTimeout         = 60 * time.Second
	defaultShutdownTimeout = 3 * time.Second
	defaultDedupeTTL       = 24 * time.Hour
	defaultKeyPrefix       = "zerodq"
	defaultDialTimeout     = node.DefaultDialTimeout
	defaultIOTimeout       = node.DefaultIOTimeout
	defaultRedisTimeout    = claim.DefaultCallTimeout
	defaultMaxJobSize      = 65535
	defaultRetryBackoff    = time.Second
	defaultMaxRetryBackoff = 10 * time.Minute
)

// Limits that Validate enforces.
const (
	// minTTR leaves room for heartbeats every TTR/3 and for beanstalkd's
	// DEADLINE_SOON second before a lease runs out.
	minTTR = 3 * time.Second
	// maxWorkers bounds the goroutines and held copies of one process.
	maxWorkers = 10000
	// minMaxJobSize keeps room for an envelope with headers and a signature.
	minMaxJobSize = 512
)

// Validate checks c after filling its zero tuning fields with their defaults
// and returns the first problem, in field order, as a *ConfigError that names
// the field and its value and matches ErrBadConfig.
func (c DqConf) Validate() error {
	_, err := c.normalize()
	return err
}

// Normalized validates c and returns it as a Producer, Consumer or
// Inspector runs with it: every default filled in, Replicas capped by the node
// count and MinWrites by the effective Replicas. Extensions built on dq (dqx)
// read their defaults from it instead of repeating them.
func (c DqConf) Normalized() (DqConf, error) { return c.normalize() }

// QueueName is the queue's name in its Redis keys
// (<KeyPrefix>:<QueueName>:<job ID>): the tube when every node uses the same
// one, else the sorted distinct tubes joined with ','. It does not depend on
// the order the nodes are listed in.
func (c DqConf) QueueName() string { return c.claimTube() }

// normalize validates c and returns the copy the producer and consumer run
// with: defaults filled in, Replicas capped by the node count and MinWrites by
// the effective Replicas. The caller's slices are not shared with the copy.
func (c DqConf) normalize() (DqConf, error) {
	n := c.withDefaults()
	if err := n.validate(); err != nil {
		return DqConf{}, err
	}

	n.Replicas = min(n.Replicas, len(n.Beanstalks))
	n.MinWrites = min(n.MinWrites, n.Replicas)
	return n, nil
}

// withDefaults returns a copy of c whose zero tuning fields hold their
// defaults, except MaxRetries, whose zero means no retry. Negative values
// stay, for validate to reject.
func (c DqConf) withDefaults() DqConf {
	c.Beanstalks = slices.Clone(c.Beanstalks)
	c.SigningKeys = slices.Clone(c.SigningKeys)
	if c.Redis.Type == "" {
		c.Redis.Type = redis.NodeType
	}

	fill(&c.Replicas, defaultReplicas)
	fill(&c.MinWrites, defaultMinWrites)
	fill(&c.TTR, defaultTTR)
	fill(&c.Workers, defaultWorkers)
	fill(&c.Timeout, defaultTimeout)
	fill(&c.ShutdownTimeout, defaultShutdownTimeout)
	fill(&c.DedupeTTL, defaultDedupeTTL)
	fill(&c.KeyPrefix, defaultKeyPrefix)
	fill(&c.DialTimeout, defaultDialTimeout)
	fill(&c.IOTimeout, defaultIOTimeout)
	fill(&c.RedisTimeout, defaultRedisTimeout)
	fill(&c.MaxJobSize, defaultMaxJobSize)
	fill(&c.RetryBackoff, defaultRetryBackoff)
	fill(&c.MaxRetryBackoff, defaultMaxRetryBackoff)
	return c
}

func fill[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// validate checks a config whose defaults are filled, in field order.
func (c DqConf) validate() error {
	if err := c.validateBeanstalks(); err != nil {
		return err
	}

	switch {
	case c.Redis.Host == "":
		return badConfig("Redis.Host", c.Redis.Host, "empty host")
	case c.Redis.Type != redis.NodeType && c.Redis.Type != redis.ClusterType:
		return badConfig("Redis.Type", c.Redis.Type, "must be node or cluster")
	case c.Replicas < 1:
		return badConfig("Replicas", c.Replicas, "must be at least 1")
	case c.Replicas > claim.MaxSlots:
		return badConfig("Replicas", c.Replicas,
			"must be at most "+strconv.Itoa(claim.MaxSlots)+", the copies a job record can track")
	case c.MinWrites < 1:
		return badConfig("MinWrites", c.MinWrites, "must be at least 1")
	case c.MinWrites > c.Replicas:
		return badConfig("MinWrites", c.MinWrites,
			fmt.Sprintf("exceeds Replicas (%d)", c.Replicas))
	case c.TTR < minTTR:
		return badConfig("TTR", c.TTR, "must be at least "+minTTR.String())
	case c.Workers < 1 || c.Workers > maxWorkers:
		return badConfig("Workers", c.Workers,
			"must be between 1 and "+strconv.Itoa(maxWorkers))
	case c.MaxRetries < 0:
		return badConfig("MaxRetries", c.MaxRetries, "must not be negative")
	case c.Timeout <= 0:
		return badConfig("Timeout", c.Timeout, "must be positive")
	case c.ShutdownTimeout <= 0:
		return badConfig("ShutdownTimeout", c.ShutdownTimeout, "must be positive")
	case c.DedupeTTL <= 0:
		return badConfig("DedupeTTL", c.DedupeTTL, "must be positive")
	case c.History < 0:
		return badConfig("History", c.History, "must not be negative")
	case strings.ContainsFunc(c.KeyPrefix, badKeyPrefixRune):
		return badConfig("KeyPrefix", c.KeyPrefix,
			"must not contain '{', '}' or whitespace")
	case c.DialTimeout <= 0:
		return badConfig("DialTimeout", c.DialTimeout, "must be positive")
	case c.IOTimeout <= 0:
		return badConfig("IOTimeout", c.IOTimeout, "must be positive")
	case c.RedisTimeout <= 0:
		return badConfig("RedisTimeout", c.RedisTimeout, "must be positive")
	case c.MaxJobSize < minMaxJobSize:
		return badConfig("MaxJobSize", c.MaxJobSize,
			"must be at least "+strconv.Itoa(minMaxJobSize))
	case c.RetryBackoff <= 0:
		return badConfig("RetryBackoff", c.RetryBackoff, "must be positive")
	case c.MaxRetryBackoff < c.RetryBackoff:
		return badConfig("MaxRetryBackoff", c.MaxRetryBackoff,
			"must be at least RetryBackoff ("+c.RetryBackoff.String()+")")
	}

	for i, key := range c.SigningKeys {
		if key == "" {
			return badConfig(fmt.Sprintf("SigningKeys[%d]", i), key, "empty key")
		}
	}

	return nil
}

// validateBeanstalks checks every node and that no endpoint appears twice: two
// tubes on one node would put two copies of a job on the same server.
func (c DqConf) validateBeanstalks() error {
	if len(c.Beanstalks) == 0 {
		return badConfig("Beanstalks", c.Beanstalks, "at least one node is required")
	}

	seen := make(map[string]int, len(c.Beanstalks))
	for i, b := range c.Beanstalks {
		field := fmt.Sprintf("Beanstalks[%d]", i)
		key, reason := endpointKey(b.Endpoint)
		if reason != "" {
			return badConfig(field+".Endpoint", b.Endpoint, reason)
		}
		switch {
		case b.Tube == "":
			return badConfig(field+".Tube", b.Tube, "empty tube")
		case len(b.Tube) > node.MaxTubeNameLen:
			return badConfig(field+".Tube", b.Tube,
				"longer than "+strconv.Itoa(node.MaxTubeNameLen)+" bytes")
		case node.CheckTube(b.Tube) != nil:
			return badConfig(field+".Tube", b.Tube, "invalid tube name")
		}

		if j, dup := seen[key]; dup {
			reason := fmt.Sprintf("endpoint already used by Beanstalks[%d]", j)
			if c.Beanstalks[j].Tube == b.Tube {
				reason = fmt.Sprintf("duplicate of Beanstalks[%d]", j)
			}
			return badConfig(field+".Endpoint", b.Endpoint, reason)
		}
		seen[key] = i
	}

	return nil
}

// endpointKey returns a form of endpoint in which spellings of the same
// address compare equal (host case, leading zeros of the port), or the reason
// it is not host:port.
func endpointKey(endpoint string) (key, reason string) {
	if endpoint == "" {
		return "", "empty endpoint"
	}

	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", "not host:port"
	}
	if host == "" {
		return "", "missing host"
	}
	if port == "" || strings.ContainsFunc(port, func(r rune) bool { return r < '0' || r > '9' }) {
		return "", "port is not a number"
	}
	num, err := strconv.ParseUint(port, 10, 16)
	if err != nil || num == 0 {
		return "", "port out of range 1..65535"
	}

	return net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(num, 10)), ""
}

func badKeyPrefixRune(r rune) bool {
	return r == '{' || r == '}' || unicode.IsSpace(r)
}

// redisConf is the Redis config zerodq's own client uses. go-redis names
// itself with CLIENT SETINFO on every new connection; Redis before 7.2
// answers that with an error, which go-zero's breaker counts as a failure
// until it opens and drops the claims: the name is only informational, so
// zerodq never sends it. RESP2 carries everything the claim scripts answer,
// without go-redis's check for RESP3 push notifications on every reply.
func (c DqConf) redisConf() redis.RedisConf {
	r := c.Redis
	r.DisableIdentity = true
	r.Protocol = 2
	return r
}

// claimTube names the queue in Redis keys (<KeyPrefix>:<claimTube>:<id>).
// Every copy of a job must map to the same record whatever node it sits on,
// and producers and consumers must agree even when they list the nodes in a
// different order: so it is the tube when all nodes share one (the common
// case), else the sorted distinct tubes joined with ','.
func (c DqConf) claimTube() string {
	tubes := make([]string, 0, len(c.Beanstalks))
	for _, b := range c.Beanstalks {
		tubes = append(tubes, b.Tube)
	}
	slices.Sort(tubes)
	return strings.Join(slices.Compact(tubes), ",")
}

// signingKeys turns the configured keys into the envelope key ring.
func (c DqConf) signingKeys() [][]byte {
	if len(c.SigningKeys) == 0 {
		return nil
	}
	keys := make([][]byte, len(c.SigningKeys))
	for i, k := range c.SigningKeys {
		keys[i] = []byte(k)
	}
	return keys
}
