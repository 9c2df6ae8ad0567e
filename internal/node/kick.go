package node

import (
	"context"
	"strconv"
)

// JobStat is what beanstalkd's stats-job tells of one job.
type JobStat struct {
	Tube     string
	State    string // ready, delayed, reserved or buried
	Kicks    int
	Buries   int
	Releases int
}

// JobStat reads stats-job of job id, on any pooled connection. Without a
// binlog beanstalkd numbers jobs from 1 again after a restart, so check the
// tube (and the body) before acting on a remembered number.
func (n *Node) JobStat(ctx context.Context, id uint64) (JobStat, error) {
	if err := n.ready(ctx); err != nil {
		return JobStat{}, n.fail("stats-job", err)
	}
	c, err := n.conn()
	if err != nil {
		return JobStat{}, n.fail("stats-job", err)
	}
	stats, err := c.bc.StatsJob(id)
	if err != nil {
		return JobStat{}, n.failed(c, "stats-job", err, 0)
	}
	tube, ok := stats["tube"]
	if !ok {
		return JobStat{}, n.fail("stats-job", errNoTube)
	}
	st := JobStat{Tube: tube, State: stats["state"]}
	st.Kicks, _ = strconv.Atoi(stats["kicks"])
	st.Buries, _ = strconv.Atoi(stats["buries"])
	st.Releases, _ = strconv.Atoi(stats["releases"])
	return st, nil
}

// KickID makes buried (or delayed) job id ready again (kick-job), on any
// pooled connection. A job in another state answers ErrNotFound.
func (n *Node) KickID(ctx context.Context, id uint64) error {
	if err := n.ready(ctx); err != nil {
		return n.fail("kick-job", err)
	}
	c, err := n.conn()
	if err != nil {
		return n.fail("kick-job", err)
	}
	if err := c.bc.KickJob(id); err != nil {
		return n.failed(c, "kick-job", err, 0)
	}
	return nil
}
