package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	goredis "github.com/redis/go-redis/v9"
)

// The cost scenario reads the servers' own counters before and after a
// known number of jobs. The probes that read them count their own bytes, so
// that their traffic is taken out of the servers' totals.

// countingConn counts the bytes read and written on a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func (c countingConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.n.Add(int64(k))
	return k, err
}

// redisCounters are the counters of INFO, summed over the probed servers.
type redisCounters struct {
	calls  map[string]int64 // commandstats calls by command
	usec   map[string]int64 // commandstats usec by command
	cpu    float64          // used_cpu_sys + used_cpu_user, seconds
	net    int64            // total_net_input_bytes + total_net_output_bytes
	memory int64            // used_memory
}

// redisProbe reads INFO from each server of a Redis (one, or every master
// of a cluster) on a connection of its own.
type redisProbe struct {
	clients []*goredis.Client
	own     atomic.Int64 // bytes of the probe's own traffic
}

func newRedisProbe(ctx context.Context, addrs []string) (*redisProbe, error) {
	p := &redisProbe{}
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{
			Addr: a, PoolSize: 1, DisableIdentity: true, Protocol: 2,
			Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: conn, n: &p.own}, nil
			},
		})
		p.clients = append(p.clients, c)
		// Connect now: a connection's handshake is not a job's.
		if err := c.Ping(ctx).Err(); err != nil {
			p.close()
			return nil, fmt.Errorf("redis probe %s: %w", a, err)
		}
	}
	return p, nil
}

func (p *redisProbe) close() {
	for _, c := range p.clients {
		_ = c.Close()
	}
}

func (p *redisProbe) read(ctx context.Context) (redisCounters, error) {
	r := redisCounters{calls: map[string]int64{}, usec: map[string]int64{}}
	for _, c := range p.clients {
		txt, err := c.Info(ctx, "commandstats", "cpu", "stats", "memory").Result()
		if err != nil {
			return r, fmt.Errorf("redis probe: INFO: %w", err)
		}
		for _, line := range strings.Split(txt, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok {
				continue
			}
			switch {
			case strings.HasPrefix(k, "cmdstat_"):
				name := strings.TrimPrefix(k, "cmdstat_")
				for _, f := range strings.Split(v, ",") {
					fk, fv, _ := strings.Cut(f, "=")
					switch fk {
					case "calls":
						r.calls[name] += atoi(fv)
					case "usec":
						r.usec[name] += atoi(fv)
					}
				}
			case k == "used_cpu_sys" || k == "used_cpu_user":
				f, _ := strconv.ParseFloat(v, 64)
				r.cpu += f
			case k == "total_net_input_bytes" || k == "total_net_output_bytes":
				r.net += atoi(v)
			case k == "used_memory":
				r.memory += atoi(v)
			}
		}
	}
	r.net -= p.own.Load()
	return r, nil
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

// nodeCounters are beanstalkd's counters, summed over the nodes.
type nodeCounters struct {
	cmds map[string]int64 // the cmd-* counters, by command
	cpu  float64          // rusage-utime + rusage-stime, seconds
	io   int64            // bytes read and written by the processes; -1 when unreadable
}

// nodeProbe reads stats from each node on a connection of its own.
type nodeProbe struct {
	conns []*beanstalk.Conn
	own   atomic.Int64           // bytes of the probe's own traffic
	cmds  map[string]int64       // the probe's own requests, by command
	pids  []int                  // the nodes' processes, when they run here
	tubes map[string]*probeTubes // stats-tube readers by tube, per node
}

type probeTubes struct{ tubes []*beanstalk.Tube }

func newNodeProbe(endpoints []string) (*nodeProbe, error) {
	p := &nodeProbe{cmds: map[string]int64{}, tubes: map[string]*probeTubes{}}
	for _, ep := range endpoints {
		conn, err := net.DialTimeout("tcp", ep, rawDial)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("node probe %s: %w", ep, err)
		}
		p.conns = append(p.conns, beanstalk.NewConn(countingConn{Conn: conn, n: &p.own}))
	}
	return p, nil
}

func (p *nodeProbe) close() {
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *nodeProbe) read(localProcs bool) (nodeCounters, error) {
	r := nodeCounters{cmds: map[string]int64{}}
	pids := p.pids[:0]
	for _, c := range p.conns {
		p.cmds["stats"]++
		m, err := c.Stats()
		if err != nil {
			return r, fmt.Errorf("node probe: stats: %w", err)
		}
		for k, v := range m {
			if strings.HasPrefix(k, "cmd-") {
				r.cmds[strings.TrimPrefix(k, "cmd-")] += atoi(v)
			}
		}
		for _, k := range []string{"rusage-utime", "rusage-stime"} {
			f, _ := strconv.ParseFloat(m[k], 64)
			r.cpu += f
		}
		pids = append(pids, int(atoi(m["pid"])))
	}
	p.pids = pids
	for k, n := range p.cmds {
		r.cmds[k] -= n
	}
	r.io = -1
	if localProcs {
		if n, ok := procIO(p.pids); ok {
			r.io = n - p.own.Load()
		}
	}
	return r, nil
}

// procIO sums what the processes read and wrote through system calls
// (/proc/<pid>/io rchar + wchar): for a beanstalkd without a binlog, the bytes
// of its connections.
func procIO(pids []int) (int64, bool) {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			return 0, false
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "rchar" || k == "wchar" {
				sum += atoi(v)
			}
		}
	}
	return sum, true
}

// copiesIn is how many copies of tube the nodes hold, and how many of
// those are reserved.
func (p *nodeProbe) copiesIn(tube string) (total, reserved int64, err error) {
	ts := p.tubes[tube]
	if ts == nil {
		ts = &probeTubes{}
		for _, c := range p.conns {
			ts.tubes = append(ts.tubes, beanstalk.NewTube(c, tube))
		}
		p.tubes[tube] = ts
	}
	for _, t := range ts.tubes {
		p.cmds["stats-tube"]++
		m, err := t.Stats()
		if err != nil {
			if errors.Is(err, beanstalk.ErrNotFound) {
				continue // no job and no watcher: nothing there
			}
			return 0, 0, err
		}
		for _, k := range []string{"current-jobs-ready", "current-jobs-reserved", "current-jobs-delayed",
			"current-jobs-buried"} {
			total += atoi(m[k])
		}
		reserved += atoi(m["current-jobs-reserved"])
	}
	return total, reserved, nil
}

// awaitEmpty waits until the nodes hold no copy of tube: every copy of the
// jobs that ran was deleted.
func (p *nodeProbe) awaitEmpty(tube string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		total, _, err := p.copiesIn(tube)
		if err != nil {
			return err
		}
		if total == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d copies of %s still on the nodes after %v", total, tube, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
