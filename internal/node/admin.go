package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// TubeStats are beanstalkd's counters of a node's tube (stats-tube). They
// count jobs on the node, which for zerodq are copies.
type TubeStats struct {
	Urgent   int64 // ready with a priority below 1024
	Ready    int64
	Reserved int64
	Delayed  int64
	Buried   int64
	// Waiting counts connections blocked in a reserve that watches the tube.
	Waiting int64
	// Pause is the length of beanstalkd's own pause-tube on the tube (zero
	// when it is not paused), PauseLeft what remains of it.
	Pause     time.Duration
	PauseLeft time.Duration
}

// ServerStats are what an operator needs of a node's stats.
type ServerStats struct {
	Version string
	Uptime  time.Duration
	// MaxJobSize is the node's -z: the largest body a put may carry.
	MaxJobSize int
	// Binlog is true when the node writes a binlog (-b), so its jobs survive
	// a restart.
	Binlog      bool
	Connections int64
	// Draining is true after SIGUSR1: the node refuses new jobs.
	Draining bool
	Pid      int
}

// errBadStats reports a stats reply whose field is missing or not a number.
var errBadStats = errors.New("unreadable stats reply")

// TubeStats reads stats-tube for the node's tube on a pooled connection,
// bounded by the node's I/O deadline. A tube beanstalkd does not know (no job
// and no watcher yet) holds nothing: its stats are zero, not an error.
func (n *Node) TubeStats(ctx context.Context) (TubeStats, error) {
	if err := n.ready(ctx); err != nil {
		return TubeStats{}, n.fail("stats-tube", err)
	}
	c, err := n.conn()
	if err != nil {
		return TubeStats{}, n.fail("stats-tube", err)
	}
	m, err := (&beanstalk.Tube{Conn: c.bc, Name: n.tube}).Stats()
	if err != nil {
		v := judge(err, 0)
		if v.err == ErrNotFound {
			return TubeStats{}, nil
		}
		n.settle(c, v)
		return TubeStats{}, &opError{op: "stats-tube", endpoint: n.endpoint, uncertain: v.uncertain, err: v.err}
	}
	r := statsReader{m: m}
	s := TubeStats{
		Urgent:    r.int("current-jobs-urgent"),
		Ready:     r.int("current-jobs-ready"),
		Reserved:  r.int("current-jobs-reserved"),
		Delayed:   r.int("current-jobs-delayed"),
		Buried:    r.int("current-jobs-buried"),
		Waiting:   r.int("current-waiting"),
		Pause:     time.Duration(r.int("pause")) * time.Second,
		PauseLeft: time.Duration(r.int("pause-time-left")) * time.Second,
	}
	if r.err != nil {
		return TubeStats{}, n.fail("stats-tube", r.err)
	}
	return s, nil
}

// ServerStats reads the node's stats on a pooled connection, bounded by the
// node's I/O deadline.
func (n *Node) ServerStats(ctx context.Context) (ServerStats, error) {
	// The tube's own check does not matter here, but ready checks it too:
	// a node with a bad tube is refused everything alike.
	if err := n.ready(ctx); err != nil {
		return ServerStats{}, n.fail("stats", err)
	}
	c, err := n.conn()
	if err != nil {
		return ServerStats{}, n.fail("stats", err)
	}
	m, err := c.bc.Stats()
	if err != nil {
		return ServerStats{}, n.failed(c, "stats", err, 0)
	}
	r := statsReader{m: m}
	s := ServerStats{
		Version:    strings.Trim(m["version"], `"`),
		Uptime:     time.Duration(r.int("uptime")) * time.Second,
		MaxJobSize: int(r.int("max-job-size")),
		// Without -b beanstalkd reports binlog index 0; with it, the index
		// of the file it writes, from 1.
		Binlog:      r.int("binlog-current-index") > 0,
		Connections: r.int("current-connections"),
		Draining:    m["draining"] == "true",
		Pid:         int(r.int("pid")),
	}
	if r.err != nil {
		return ServerStats{}, n.fail("stats", r.err)
	}
	return s, nil
}

// statsReader reads numeric fields of a stats reply, keeping the first
// problem.
type statsReader struct {
	m   map[string]string
	err error
}

func (r *statsReader) int(field string) int64 {
	v, err := strconv.ParseInt(r.m[field], 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%w: %s = %q", errBadStats, field, r.m[field])
	}
	return v
}
