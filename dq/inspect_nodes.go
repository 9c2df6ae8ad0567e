package dq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/node"
)

// TubeStats are one node's counts for the queue's tube, from beanstalkd's
// stats-tube: they count copies, not jobs (a job has up to Replicas copies).
type TubeStats struct {
	Node     string `json:"node"`
	Tube     string `json:"tube"`
	Ready    int64  `json:"ready"`
	Delayed  int64  `json:"delayed"`
	Reserved int64  `json:"reserved"`
	Buried   int64  `json:"buried"`
	Urgent   int64  `json:"urgent"`
	Waiting  int64  `json:"waiting"` // connections waiting in a reserve on the tube
	// Err is why the node could not be read ("" when it was); its counts are
	// then zero.
	Err string `json:"error,omitempty"`
}

// Stats is the queue at a glance.
type Stats struct {
	Queue string      `json:"queue"`
	Tubes []TubeStats `json:"tubes"` // per node, in config order
	// Total sums the nodes that answered (copies).
	Total TubeStats `json:"total"`
	// Paused is the queue-wide pause consumers obey (Inspector.Pause).
	Paused    bool `json:"paused"`
	Consumers int  `json:"consumers"` // live registry entries
	InFlight  int  `json:"in_flight"` // handlers running, over the consumers
	Held      int  `json:"held"`      // copies held in memory, over the consumers
	// DeadLetters counts the dead-letter index (jobs, not copies).
	DeadLetters int64 `json:"dead_letters"`
	// Outcomes sums the consumers' outcome counters since each started:
	// ok, retry, dead, duplicate, revoked, malformed.
	Outcomes map[string]int64 `json:"outcomes"`
	// Errors names each part of Stats that could not be read from Redis
	// (the pause, the consumer registry, the dead-letter count), which is
	// then left zero. A node that could not be read is in its TubeStats.Err.
	Errors []string `json:"errors,omitempty"`
}

// NodeInfo is one beanstalkd node as its stats tell.
type NodeInfo struct {
	Endpoint string `json:"endpoint"`
	Tube     string `json:"tube"`
	Up       bool   `json:"up"`
	Err      string `json:"error,omitempty"`
	Version  string `json:"version,omitempty"`
	// Binlog is true when the node writes a binlog (-b): its copies survive
	// a restart.
	Binlog      bool          `json:"binlog"`
	MaxJobSize  int           `json:"max_job_size"`
	Uptime      time.Duration `json:"uptime"`
	Connections int64         `json:"connections"`
	Draining    bool          `json:"draining"`
	// TubePaused is beanstalkd's own pause-tube on the queue's tube (not
	// zerodq's pause).
	TubePaused bool `json:"tube_paused"`
	// Pid is the node's process id on its host.
	Pid int `json:"pid,omitempty"`
}

// Check is one line of Inspector.Doctor: a production rule and whether the
// queue follows it.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Bounds of Doctor's clock check. A consumer's clock offset from Redis does
// not make a job fire early (Redis time is the judge), but a host off by
// more than a second fires its jobs late by as much, and an uncertainty
// this wide means a round trip to Redis of half a second or more.
const (
	// MaxClockOffset bounds |ClockOffset| of a healthy consumer.
	MaxClockOffset = time.Second
	// MaxClockUncertainty bounds ClockUncertainty of a healthy consumer.
	MaxClockUncertainty = 250 * time.Millisecond
)

// minRedisVersion is the oldest Redis the README supports.
var minRedisVersion = [2]int{6, 2}

// Stats reads every node's counts for the queue's tube, the consumer
// registry, the pause and the dead-letter count. An unreachable node is
// reported in its TubeStats.Err, and a part Redis could not answer in
// Stats.Errors, not as an error: the error is for a ctx that ended.
func (in *Inspector) Stats(ctx context.Context) (Stats, error) {
	s := Stats{Queue: in.tube, Tubes: make([]TubeStats, len(in.nodes)), Outcomes: map[string]int64{}}
	var (
		wg       sync.WaitGroup
		pause    PauseInfo
		cs       []ConsumerInfo
		dead     int
		errPause error
		errCons  error
		errDead  error
	)
	wg.Add(3)
	go func() { defer wg.Done(); pause, errPause = in.Paused(ctx) }()
	go func() { defer wg.Done(); cs, errCons = in.Consumers(ctx) }()
	go func() { defer wg.Done(); dead, errDead = in.CountDead(ctx, DeadFilter{}) }()
	in.eachNode(func(i int, n *node.Node) {
		ts := TubeStats{Node: n.Endpoint(), Tube: in.conf.Beanstalks[i].Tube}
		st, err := n.TubeStats(ctx)
		if err != nil {
			ts.Err = err.Error()
		} else {
			ts.Ready, ts.Delayed, ts.Reserved, ts.Buried = st.Ready, st.Delayed, st.Reserved, st.Buried
			ts.Urgent, ts.Waiting = st.Urgent, st.Waiting
		}
		s.Tubes[i] = ts
	})
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}

	s.Total.Tube = in.tube
	for _, ts := range s.Tubes {
		if ts.Err != "" {
			continue
		}
		s.Total.Ready += ts.Ready
		s.Total.Delayed += ts.Delayed
		s.Total.Reserved += ts.Reserved
		s.Total.Buried += ts.Buried
		s.Total.Urgent += ts.Urgent
		s.Total.Waiting += ts.Waiting
	}
	if errPause != nil {
		s.Errors = append(s.Errors, "pause: "+errPause.Error())
	} else {
		s.Paused = pause.Paused
	}
	if errCons != nil {
		s.Errors = append(s.Errors, "consumers: "+errCons.Error())
	} else {
		s.Consumers = len(cs)
		for _, c := range cs {
			s.InFlight += c.InFlight
			s.Held += c.Held
			for k, v := range c.Outcomes {
				s.Outcomes[k] += v
			}
		}
	}
	if errDead != nil {
		s.Errors = append(s.Errors, "dead letters: "+errDead.Error())
	} else {
		s.DeadLetters = int64(dead)
	}
	return s, nil
}

// Nodes reads every node's stats, all nodes at once, each bounded by
// DialTimeout and IOTimeout. A node that does not answer has Up false and
// Err saying why; the error is for a ctx that ended.
func (in *Inspector) Nodes(ctx context.Context) ([]NodeInfo, error) {
	out := make([]NodeInfo, len(in.nodes))
	in.eachNode(func(i int, n *node.Node) {
		ni := NodeInfo{Endpoint: n.Endpoint(), Tube: in.conf.Beanstalks[i].Tube}
		defer func() { out[i] = ni }()
		st, err := n.ServerStats(ctx)
		if err != nil {
			ni.Err = err.Error()
			return
		}
		ni.Up = true
		ni.Version, ni.Binlog, ni.MaxJobSize = st.Version, st.Binlog, st.MaxJobSize
		ni.Uptime, ni.Connections, ni.Draining, ni.Pid = st.Uptime, st.Connections, st.Draining, st.Pid
		ts, err := n.TubeStats(ctx)
		if err != nil {
			ni.Err = err.Error()
			return
		}
		ni.TubePaused = ts.PauseLeft > 0
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// eachNode runs fn for every node at once and waits for them all: a node
// that hangs costs its deadlines once, not once per node before it.
func (in *Inspector) eachNode(fn func(i int, n *node.Node)) {
	var wg sync.WaitGroup
	wg.Add(len(in.nodes))
	for i, n := range in.nodes {
		go func() {
			defer wg.Done()
			fn(i, n)
		}()
	}
	wg.Wait()
}

// Doctor checks the README's production rules: Redis reachable, with
// persistence (AOF), maxmemory-policy noeviction and version ≥ 6.2; every
// node reachable, with its max job size equal to MaxJobSize and a binlog;
// Replicas ≤ nodes; MinWrites reachable with the nodes up; the consumers'
// clocks within MaxClockOffset and MaxClockUncertainty of Redis; and the
// consumers' config agreeing. A check that fails has OK false, and a check
// Doctor could not make (CONFIG and INFO both refused, the registry not
// readable) fails saying why. A node that does not answer fails its
// reachability check only. On a Redis Cluster the Redis checks read one
// node. Whether the services export metrics is not visible from Redis or
// the nodes, so Doctor cannot check it. The error is for a ctx that ended.
func (in *Inspector) Doctor(ctx context.Context) ([]Check, error) {
	var (
		wg      sync.WaitGroup
		rchecks []Check
		nodes   []NodeInfo
		cs      []ConsumerInfo
		errCons error
	)
	wg.Add(2)
	go func() { defer wg.Done(); rchecks = in.redisChecks(ctx) }()
	go func() { defer wg.Done(); cs, errCons = in.Consumers(ctx) }()
	nodes, err := in.Nodes(ctx)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	checks := rchecks
	up := 0
	for _, n := range nodes {
		name := "node " + n.Endpoint
		if !n.Up {
			checks = append(checks, Check{Name: name + " reachable", Detail: n.Err})
			continue
		}
		up++
		checks = append(checks,
			Check{Name: name + " reachable", OK: true, Detail: "beanstalkd " + n.Version},
			Check{Name: name + " max-job-size", OK: n.MaxJobSize == in.conf.MaxJobSize,
				Detail: fmt.Sprintf("-z %d, MaxJobSize %d", n.MaxJobSize, in.conf.MaxJobSize)},
			Check{Name: name + " binlog", OK: n.Binlog, Detail: onOff(n.Binlog, "binlog on (-b)",
				"no binlog (-b): the node's copies are lost when it restarts")},
		)
	}
	checks = append(checks,
		Check{Name: "replicas", OK: in.replicas <= len(nodes),
			Detail: fmt.Sprintf("Replicas %d, %d nodes", in.replicas, len(nodes))},
		Check{Name: "min-writes", OK: in.conf.MinWrites <= up,
			Detail: fmt.Sprintf("MinWrites %d, %d of %d nodes up", in.conf.MinWrites, up, len(nodes))},
	)
	return append(checks, consumerChecks(cs, errCons)...), nil
}

// redisChecks reads INFO and CONFIG GET in one round trip: INFO answers
// where CONFIG is renamed away (managed Redis services often do), CONFIG
// where INFO lacks a field.
func (in *Inspector) redisChecks(ctx context.Context) []Check {
	var info *goredis.StringCmd
	var aof, policy *goredis.MapStringStringCmd
	err := in.rds.PipelinedCtx(ctx, func(p redis.Pipeliner) error {
		info = p.Info(ctx)
		aof = p.ConfigGet(ctx, "appendonly")
		policy = p.ConfigGet(ctx, "maxmemory-policy")
		return nil
	})
	infoVal, infoErr := infoReply(info, err)
	aofVal, aofErr := configReply(aof, err)
	polVal, polErr := configReply(policy, err)
	if !answered(infoErr) && !answered(aofErr) {
		return []Check{{Name: "redis reachable", Detail: in.conf.Redis.Host + ": " + infoErr.Error()}}
	}
	fields := parseInfo(infoVal)
	checks := []Check{{Name: "redis reachable", OK: true, Detail: in.conf.Redis.Host}}

	on, err := redisSetting(fields, "aof_enabled", infoErr, aofVal, "appendonly", aofErr)
	if err != nil {
		checks = append(checks, Check{Name: "redis aof", Detail: "unknown: " + err.Error()})
	} else {
		ok := on == "1" || on == "yes"
		checks = append(checks, Check{Name: "redis aof", OK: ok, Detail: onOff(ok, "appendonly yes",
			"appendonly no: a Redis restart loses job records, and done jobs may run again")})
	}

	pol, err := redisSetting(fields, "maxmemory_policy", infoErr, polVal, "maxmemory-policy", polErr)
	if err != nil {
		checks = append(checks, Check{Name: "redis maxmemory-policy", Detail: "unknown: " + err.Error()})
	} else {
		ok := pol == "noeviction"
		checks = append(checks, Check{Name: "redis maxmemory-policy", OK: ok,
			Detail: "maxmemory-policy " + pol + onOff(ok, "", ": Redis may evict job records")})
	}

	v := fields["redis_version"]
	if maj, mnr, ok := parseVersion(v); !ok {
		checks = append(checks, Check{Name: "redis version", Detail: fmt.Sprintf("unknown: INFO gave version %q (%v)", v, infoErr)})
	} else {
		ok := maj > minRedisVersion[0] || maj == minRedisVersion[0] && mnr >= minRedisVersion[1]
		checks = append(checks, Check{Name: "redis version", OK: ok,
			Detail: fmt.Sprintf("%s, at least %d.%d needed", v, minRedisVersion[0], minRedisVersion[1])})
	}
	return checks
}

// A pipeline can fail without setting its commands' errors (a hook that
// refuses it, a connection that could not be had): a command left without
// a reply then fails with the pipeline.
var errNoReply = errors.New("no reply")

// answered tells whether Redis was reached: it replied, if only with an
// error (a command renamed away, an ACL refusing it).
func answered(err error) bool {
	var reply goredis.Error
	return err == nil || errors.As(err, &reply)
}

// infoReply is INFO's reply, or why there is none.
func infoReply(cmd *goredis.StringCmd, pipeErr error) (string, error) {
	switch {
	case cmd != nil && cmd.Err() != nil:
		return "", cmd.Err()
	case cmd != nil && (cmd.Val() != "" || pipeErr == nil):
		return cmd.Val(), nil
	}
	return "", cmp.Or(pipeErr, errNoReply)
}

// configReply is CONFIG GET's reply, or why there is none.
func configReply(cmd *goredis.MapStringStringCmd, pipeErr error) (map[string]string, error) {
	switch {
	case cmd != nil && cmd.Err() != nil:
		return nil, cmd.Err()
	case cmd != nil && (len(cmd.Val()) > 0 || pipeErr == nil):
		return cmd.Val(), nil
	}
	return nil, cmp.Or(pipeErr, errNoReply)
}

// redisSetting is an INFO field, or else a CONFIG GET parameter, or why
// neither could be read.
func redisSetting(fields map[string]string, field string, infoErr error, cfg map[string]string, param string, cfgErr error) (string, error) {
	if v, ok := fields[field]; ok {
		return v, nil
	}
	if v, ok := cfg[param]; ok && cfgErr == nil {
		return v, nil
	}
	if infoErr == nil {
		infoErr = fmt.Errorf("no %s", field)
	}
	if cfgErr == nil {
		cfgErr = fmt.Errorf("no %s", param)
	}
	return "", fmt.Errorf("INFO: %v; CONFIG GET %s: %v", infoErr, param, cfgErr)
}

// consumerChecks are Doctor's checks of the consumer registry.
func consumerChecks(cs []ConsumerInfo, err error) []Check {
	if err != nil {
		why := "unknown: consumer registry not read: " + err.Error()
		return []Check{{Name: "consumer clocks", Detail: why}, {Name: "consumer config", Detail: why}}
	}
	if len(cs) == 0 {
		none := "no consumer registered"
		return []Check{{Name: "consumer clocks", OK: true, Detail: none}, {Name: "consumer config", OK: true, Detail: none}}
	}
	var off []string
	for _, c := range cs {
		if c.ClockOffset.Abs() > MaxClockOffset || c.ClockUncertainty > MaxClockUncertainty {
			off = append(off, fmt.Sprintf("%s offset %v ± %v", c.ID, c.ClockOffset, c.ClockUncertainty))
		}
	}
	clocks := Check{Name: "consumer clocks", OK: len(off) == 0,
		Detail: fmt.Sprintf("%s within %v ± %v of Redis", consumers(len(cs)), MaxClockOffset, MaxClockUncertainty)}
	if len(off) > 0 {
		clocks.Detail = "beyond " + MaxClockOffset.String() + " ± " + MaxClockUncertainty.String() + ": " +
			strings.Join(off, "; ")
	}
	drift := ConfigDrift(cs)
	config := Check{Name: "consumer config", OK: len(drift) == 0,
		Detail: consumers(len(cs)) + onOff(len(cs) == 1, ", nothing to compare", " agree")}
	if len(drift) > 0 {
		config.Detail = "fields differing between consumers: " + strings.Join(drift, ", ")
	}
	return []Check{clocks, config}
}

// consumers counts n consumers in words.
func consumers(n int) string {
	return strconv.Itoa(n) + onOff(n == 1, " consumer", " consumers")
}

// parseInfo reads INFO's "field:value" lines.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			m[k] = v
		}
	}
	return m
}

// parseVersion reads the major and minor of a Redis version such as 7.2.4.
func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

func onOff(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}
