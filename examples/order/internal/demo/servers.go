// Package demo runs the order example end to end: it finds or starts the
// servers, runs the service as a child process, drives a scripted scenario
// through its HTTP API and checks what happened. cmd/demo (make demo) and the
// example's tests use it.
package demo

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/dqtest"
)

// probeTimeout bounds the check of one configured server.
const probeTimeout = 500 * time.Millisecond

// Servers are the beanstalkd nodes and the Redis a demo runs on: those
// already answering at the configured addresses, and servers started on free
// loopback ports in place of the others.
type Servers struct {
	Beanstalks []string
	Redis      redis.RedisConf
	// Notes says, one line per server, where it is and who started it.
	Notes   []string
	started []*dqtest.Server
}

// PrepareServers checks every server c names and starts a replacement for
// each one that does not answer.
func PrepareServers(ctx context.Context, c dq.DqConf) (*Servers, error) {
	s := &Servers{}
	for _, b := range c.Beanstalks {
		if probeBeanstalkd(ctx, b.Endpoint) == nil {
			s.Beanstalks = append(s.Beanstalks, b.Endpoint)
			s.Notes = append(s.Notes, "beanstalkd "+b.Endpoint+" (already running)")
			continue
		}
		srv, err := dqtest.StartBeanstalkd(dqtest.Options{})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.started = append(s.started, srv)
		s.Beanstalks = append(s.Beanstalks, srv.Addr())
		s.Notes = append(s.Notes, fmt.Sprintf("beanstalkd %s (started; nothing answered at %s)", srv.Addr(), b.Endpoint))
	}

	if c.Redis.Host != "" && probeRedis(ctx, c.Redis) == nil {
		s.Redis = c.Redis
		s.Notes = append(s.Notes, "redis "+c.Redis.Host+" (already running)")
		return s, nil
	}
	srv, err := dqtest.StartRedis(dqtest.Options{})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.started = append(s.started, srv)
	s.Redis = redis.RedisConf{Host: srv.Addr(), Type: redis.NodeType}
	s.Notes = append(s.Notes, fmt.Sprintf("redis %s (started; nothing answered at %q)", srv.Addr(), c.Redis.Host))
	return s, nil
}

// Close stops the servers PrepareServers started, and only those.
func (s *Servers) Close() {
	for _, srv := range s.started {
		srv.Close()
	}
	s.started = nil
}

// probeBeanstalkd asks addr for its stats, so that some other program
// listening there does not pass for beanstalkd.
func probeBeanstalkd(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: probeTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "OK ") {
		return fmt.Errorf("%s: not beanstalkd (answered %q)", addr, strings.TrimSpace(line))
	}
	return nil
}

func probeRedis(ctx context.Context, c redis.RedisConf) error {
	// A plain dial first: go-redis logs every refused connection.
	d := net.Dialer{Timeout: probeTimeout}
	conn, err := d.DialContext(ctx, "tcp", strings.Split(c.Host, ",")[0])
	if err != nil {
		return err
	}
	conn.Close()

	client := newRedisClient(c)
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return client.Ping(ctx).Err()
}

// newRedisClient opens a plain go-redis client for the demo's own checks,
// apart from the service's.
func newRedisClient(c redis.RedisConf) goredis.UniversalClient {
	o := &goredis.UniversalOptions{
		Addrs:         strings.Split(c.Host, ","),
		Username:      c.User,
		Password:      c.Pass,
		IsClusterMode: c.Type == redis.ClusterType,
		DialTimeout:   probeTimeout,
		ReadTimeout:   probeTimeout,
		MaxRetries:    -1,
	}
	if c.Tls {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return goredis.NewUniversalClient(o)
}

// redisOffset measures how far Redis's clock is ahead of this host's, which
// the consumers go by, from the sample with the shortest round trip; half of
// that round trip bounds the error.
func redisOffset(ctx context.Context, c redis.RedisConf) (offset, uncertainty time.Duration, err error) {
	client := newRedisClient(c)
	defer client.Close()
	best := time.Duration(-1)
	for range 5 {
		sent := time.Now()
		t, err := client.Time(ctx).Result()
		if err != nil {
			return 0, 0, fmt.Errorf("redis TIME: %w", err)
		}
		rtt := time.Since(sent)
		if best < 0 || rtt < best {
			best = rtt
			offset = t.Sub(sent.Add(rtt / 2))
		}
	}
	return offset, best / 2, nil
}
