package dqtest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Cluster is a Redis Cluster of master nodes on loopback, no replicas.
type Cluster struct {
	Servers []*Server
}

// StartRedisCluster starts n (at least 3) cluster-enabled redis-servers and
// joins them with redis-cli --cluster create.
func StartRedisCluster(n int) (*Cluster, error) {
	if n < 3 {
		n = 3
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("%w: redis-cli not found on PATH; %s", ErrMissingBinary, InstallHint)
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		s, err := StartRedis(withCluster())
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	args := []string{"--cluster", "create"}
	for _, s := range c.Servers {
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("dqtest: redis-cli --cluster create: %v: %s", err, out)
	}
	ok := Await(readyTimeout, func() bool {
		for _, s := range c.Servers {
			out, err := exec.Command(cli, "-p", fmt.Sprint(s.Port()), "cluster", "info").Output()
			if err != nil || !strings.Contains(string(out), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	if !ok {
		c.Close()
		return nil, fmt.Errorf("dqtest: redis cluster not ok after %v", readyTimeout)
	}
	return c, nil
}

// NewRedisCluster starts a 3-node cluster for t.
func NewRedisCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartRedisCluster(3)
	if err != nil {
		failStart(t, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Hosts is the comma-separated address list go-zero's cluster RedisConf takes.
func (c *Cluster) Hosts() string {
	a := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		a[i] = s.Addr()
	}
	return strings.Join(a, ",")
}

// Close stops every server of the cluster.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		s.Close()
	}
}
