// Package dqtest starts throwaway beanstalkd nodes and a Redis for the tests
// of code that uses zerodq, and hands back a dq.DqConf ready for them. The
// servers are real processes (beanstalkd and redis-server must be on PATH)
// on free loopback ports, with data directories of their own, stopped and
// removed when the test ends.
//
// In a test, one call:
//
//	func TestCancelsUnpaidOrders(t *testing.T) {
//		c := dqtest.Start(t, dqtest.Options{})
//		p := dq.MustNewProducer(c)
//		defer p.Close()
//		...
//	}
//
// Tests of one package can share one set of servers, started in TestMain,
// and keep out of each other's way with a tube and key prefix each
// (Servers.Conf). A test that kills, restarts or freezes servers (to see
// what its code does then) is better off with servers of its own.
//
// Outside CI (the CI environment variable unset), Start skips the test when
// a server binary is missing, with a hint on how to install it; under CI it
// fails.
package dqtest

import (
	"strconv"
	"testing"
	"time"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// ErrMissingBinary reports that beanstalkd or redis-server is not on PATH.
var ErrMissingBinary = dqtest.ErrMissingBinary

// Options selects the servers to start. The zero value is three beanstalkd
// nodes and a Redis, with the servers' own defaults.
type Options struct {
	// Nodes is how many beanstalkd nodes to start. If zero, default 3.
	Nodes int
	// Binlog starts the nodes with a binlog (-b), so their jobs survive a
	// Kill and Restart.
	Binlog bool
	// AOF starts Redis with appendonly yes and appendfsync always, so its
	// data survives a Kill and Restart.
	AOF bool
	// MaxJobSize is the nodes' maximum job size (-z) and the config's
	// MaxJobSize. If zero, beanstalkd's default 65535.
	MaxJobSize int
}

func (o Options) env() dqtest.EnvOptions {
	return dqtest.EnvOptions{Nodes: max(o.Nodes, 0), NodeOpts: o.nodeOptions(), RedisOpts: o.redisOptions()}
}

func (o Options) nodeOptions() []dqtest.Option {
	var opts []dqtest.Option
	if o.Binlog {
		opts = append(opts, dqtest.WithBinlog())
	}
	if o.MaxJobSize > 0 {
		opts = append(opts, dqtest.WithArgs("-z", strconv.Itoa(o.MaxJobSize)))
	}
	return opts
}

func (o Options) redisOptions() []dqtest.Option {
	if o.AOF {
		return []dqtest.Option{dqtest.WithAOF()}
	}
	return nil
}

// Start starts the servers o selects for t, stops them when t ends, and
// returns a config for them with a tube and a key prefix named after the
// test (TestName). Every other field holds its default, as go-zero's conf
// fills it.
func Start(t testing.TB, o Options) dq.DqConf {
	t.Helper()
	return servers(dqtest.NewEnv(t, o.env()), o).Conf(TestName(t))
}

// Servers are beanstalkd nodes and a Redis started by StartServers.
type Servers struct {
	// Nodes are the beanstalkd nodes, in the order Conf lists them.
	Nodes []*Server
	Redis *Server
	o     Options
	env   *dqtest.Env
}

// StartServers starts the servers o selects. The caller stops them with
// Close; if starting one fails, those already started are stopped.
func StartServers(o Options) (*Servers, error) {
	env, err := dqtest.StartEnv(o.env())
	if err != nil {
		return nil, err
	}
	return servers(env, o), nil
}

func servers(env *dqtest.Env, o Options) *Servers {
	s := &Servers{Redis: &Server{s: env.Redis}, o: o, env: env}
	for _, n := range env.Nodes {
		s.Nodes = append(s.Nodes, &Server{s: n})
	}
	return s
}

// Conf returns a config for the servers whose tube on every node and Redis
// key prefix are name (letters, digits and -+/;.$_() only; see TestName).
// Every other field holds its default, as go-zero's conf fills it; the
// caller may change its copy.
func (s *Servers) Conf(name string) dq.DqConf {
	var c dq.DqConf
	_ = conf.FillDefault(&c) // a zero DqConf always takes its defaults
	c.Redis = redis.RedisConf{Host: s.Redis.Addr(), Type: redis.NodeType}
	c.KeyPrefix = name
	if s.o.MaxJobSize > 0 {
		c.MaxJobSize = s.o.MaxJobSize
	}
	for _, n := range s.Nodes {
		c.Beanstalks = append(c.Beanstalks, dq.Beanstalk{Endpoint: n.Addr(), Tube: name})
	}
	return c
}

// Endpoints lists the nodes' host:port addresses, in the order of Nodes.
func (s *Servers) Endpoints() []string { return s.env.Endpoints() }

// Close stops every server and removes its data. It is idempotent.
func (s *Servers) Close() { s.env.Close() }

// Shared returns three beanstalkd nodes and a Redis (the zero Options)
// shared by every test of the process, started by the first call; Main stops
// them once the tests are done. Tests keep out of each other's way with a
// config each (Conf with TestName); a test that kills or freezes servers
// starts its own. Stopping the shared servers is Main's job alone.
func Shared(t testing.TB) *Servers {
	t.Helper()
	return servers(dqtest.Shared(t), Options{})
}

// Main runs a package's tests and then stops the servers Shared started:
//
//	func TestMain(m *testing.M) { dqtest.Main(m) }
func Main(m *testing.M) { dqtest.Main(m) }

// Eventually polls cond every few milliseconds until it holds, and fails t
// with the message if it does not within timeout: a test waits for what it
// needs, never for a fixed time.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	dqtest.Eventually(t, timeout, cond, format, args...)
}

// Await polls cond every few milliseconds until it holds or timeout
// passes, and reports which.
func Await(timeout time.Duration, cond func() bool) bool { return dqtest.Await(timeout, cond) }

// StartBeanstalkd starts one beanstalkd node as o selects (Binlog and
// MaxJobSize; the rest is ignored). The caller stops it with Close.
func StartBeanstalkd(o Options) (*Server, error) {
	s, err := dqtest.StartBeanstalkd(o.nodeOptions()...)
	if err != nil {
		return nil, err
	}
	return &Server{s: s}, nil
}

// StartRedis starts one Redis as o selects (AOF; the rest is ignored). The
// caller stops it with Close.
func StartRedis(o Options) (*Server, error) {
	s, err := dqtest.StartRedis(o.redisOptions()...)
	if err != nil {
		return nil, err
	}
	return &Server{s: s}, nil
}

// Server is one beanstalkd or redis-server process. It keeps its port and
// data directory across Kill and Restart, so a node with a binlog or a Redis
// with AOF comes back with its data.
type Server struct {
	s *dqtest.Server
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.s.Addr() }

// Kill ends the process with SIGKILL and waits until it is gone.
func (s *Server) Kill() { s.s.Kill() }

// Restart starts the server again on its port and data directory (killing
// it first if it runs) and waits until it answers.
func (s *Server) Restart() error { return s.s.Restart() }

// Pause freezes the process (SIGSTOP): connections are still accepted by
// the kernel, and nothing is answered until Resume, as with a hung host.
func (s *Server) Pause() error { return s.s.Pause() }

// Resume thaws a paused process (SIGCONT).
func (s *Server) Resume() error { return s.s.Resume() }

// Close stops the server and removes its data directory. It is idempotent.
func (s *Server) Close() { s.s.Close() }

// TestName returns a name unique to t and to this run, usable as a tube
// and a Redis key prefix: the test's name, cut to its last 60 characters,
// and 8 random hex digits.
func TestName(t testing.TB) string { return dqtest.Name(t) }
