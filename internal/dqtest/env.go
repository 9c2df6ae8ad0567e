package dqtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Env is a set of servers: beanstalkd nodes and one Redis.
type Env struct {
	Nodes []*Server
	Redis *Server
}

// EnvOptions selects options for the servers of an Env.
type EnvOptions struct {
	Nodes     int      // beanstalkd nodes; 3 when zero
	NodeOpts  []Option // e.g. WithBinlog()
	RedisOpts []Option // e.g. WithAOF()
}

// StartEnv starts the servers of o.
func StartEnv(o EnvOptions) (*Env, error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	e := &Env{}
	for i := 0; i < o.Nodes; i++ {
		s, err := StartBeanstalkd(o.NodeOpts...)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.Nodes = append(e.Nodes, s)
	}
	r, err := StartRedis(o.RedisOpts...)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Redis = r
	return e, nil
}

// Endpoints lists the nodes' host:port addresses.
func (e *Env) Endpoints() []string {
	eps := make([]string, len(e.Nodes))
	for i, n := range e.Nodes {
		eps[i] = n.Addr()
	}
	return eps
}

// Close stops every server of e.
func (e *Env) Close() {
	for _, n := range e.Nodes {
		n.Close()
	}
	if e.Redis != nil {
		e.Redis.Close()
	}
}

// NewEnv starts servers of the test's own (for tests that kill or pause them)
// and stops them when the test ends.
func NewEnv(t testing.TB, o EnvOptions) *Env {
	t.Helper()
	e, err := StartEnv(o)
	if err != nil {
		failStart(t, err)
	}
	t.Cleanup(e.Close)
	return e
}

// NewBeanstalkd starts a beanstalkd for t.
func NewBeanstalkd(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := StartBeanstalkd(opts...)
	if err != nil {
		failStart(t, err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewRedis starts a redis-server for t.
func NewRedis(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := StartRedis(opts...)
	if err != nil {
		failStart(t, err)
	}
	t.Cleanup(s.Close)
	return s
}

// failStart fails the test, or skips it with the install hint when a server
// binary is missing outside CI (under CI a missing server is a failure).
func failStart(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrMissingBinary) && os.Getenv("CI") == "" {
		t.Skipf("skipping (not under CI): %v", err)
	}
	t.Fatalf("%v", err)
}

var shared struct {
	once sync.Once
	env  *Env
	err  error
}

// Shared returns a 3-node Env shared by every test of the process. Tests keep
// out of each other's way with their own tube and key prefix (see Name); a
// test that kills or pauses servers uses NewEnv instead. Main stops it.
func Shared(t testing.TB) *Env {
	t.Helper()
	shared.once.Do(func() { shared.env, shared.err = StartEnv(EnvOptions{}) })
	if shared.err != nil {
		failStart(t, shared.err)
	}
	return shared.env
}

// Main runs the package's tests and then stops the shared servers.
func Main(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		shared.env.Close()
	}
	os.Exit(code)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// Name returns a name unique to this test and run, usable as a beanstalkd tube
// and a Redis key prefix.
func Name(t testing.TB) string {
	n := unsafeName.ReplaceAllString(t.Name(), "-")
	n = strings.Trim(n, "-")
	if len(n) > 60 {
		n = n[len(n)-60:]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strings.TrimLeft(n, "-") + "-" + hex.EncodeToString(b[:])
}

// Eventually polls cond every few milliseconds until it holds, and fails the
// test with the message if it does not within timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !Await(timeout, cond) {
		t.Fatalf("condition not met within %v: %s", timeout, fmt.Sprintf(format, args...))
	}
}

// Await polls cond until it holds or timeout passes, and reports which.
func Await(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
