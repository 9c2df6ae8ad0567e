package dq

import (
	"context"
	"time"
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
}

// Check is one line of Inspector.Doctor: a production rule and whether the
// queue follows it.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Stats reads every node's counts for the queue's tube, the consumer
// registry, the pause and the dead-letter count. An unreachable node is
// reported in its TubeStats.Err, not as an error.
func (in *Inspector) Stats(ctx context.Context) (Stats, error) {
	return Stats{}, errUnbuilt
}

// Nodes reads every node's stats.
func (in *Inspector) Nodes(ctx context.Context) ([]NodeInfo, error) {
	return nil, errUnbuilt
}

// Doctor checks the README's production rules: Redis persistence (AOF),
// maxmemory-policy noeviction, Redis ≥ 6.2, every node reachable with its
// max job size equal to MaxJobSize and a binlog, Replicas ≤ nodes, MinWrites
// reachable with the nodes up, the consumers' clock offsets, and the
// consumers' config agreeing. A check that fails has OK false; the error is
// for a Doctor that could not run at all.
func (in *Inspector) Doctor(ctx context.Context) ([]Check, error) {
	return nil, errUnbuilt
}
