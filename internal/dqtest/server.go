// Package dqtest starts real beanstalkd and redis-server processes on free
// loopback ports for zerodq's tests, benchmarks and soak runs, and lets them
// be killed, restarted, paused and resumed.
package dqtest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrMissingBinary reports that a server binary is not installed.
var ErrMissingBinary = errors.New("dqtest: server binary not installed")

// readyTimeout bounds how long a (re)started server may take to answer.
const readyTimeout = 10 * time.Second

// Server is one beanstalkd or redis-server process owned by the harness. It
// keeps its port and data directory across Kill and Restart, so a binlogged
// beanstalkd or an AOF Redis comes back with its data.
type Server struct {
	kind    string // "beanstalkd" or "redis-server"
	bin     string
	dir     string
	port    int
	extra   []string
	binlog  bool
	aof     bool
	cluster bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
	closed bool
}

// Option tunes a server before it starts.
type Option func(*Server)

// WithBinlog starts beanstalkd with a binlog directory (-b), so its jobs
// survive SIGKILL and Restart.
func WithBinlog() Option { return func(s *Server) { s.binlog = true } }

// WithAOF starts redis-server with appendonly yes and appendfsync always, so
// its data survives SIGKILL and Restart.
func WithAOF() Option { return func(s *Server) { s.aof = true } }

// WithArgs adds command-line arguments to the server.
func WithArgs(args ...string) Option {
	return func(s *Server) { s.extra = append(s.extra, args...) }
}

func withCluster() Option { return func(s *Server) { s.cluster = true } }

// StartBeanstalkd starts a beanstalkd on a free loopback port.
func StartBeanstalkd(opts ...Option) (*Server, error) {
	return start("beanstalkd", opts)
}

// StartRedis starts a redis-server on a free loopback port.
func StartRedis(opts ...Option) (*Server, error) {
	return start("redis-server", opts)
}

// InstallHint says how to install the test servers.
const InstallHint = "run `make servers` (Debian/Ubuntu: apt-get install beanstalkd redis-server redis-tools; " +
	"macOS: brew install beanstalkd redis)"

func start(kind string, opts []Option) (*Server, error) {
	bin, err := exec.LookPath(kind)
	if err != nil {
		return nil, fmt.Errorf("%w: %s not found on PATH; %s", ErrMissingBinary, kind, InstallHint)
	}
	dir, err := os.MkdirTemp("", "zerodq-"+kind+"-")
	if err != nil {
		return nil, err
	}
	s := &Server{kind: kind, bin: bin, dir: dir}
	for _, o := range opts {
		o(s)
	}
	// A free port can be taken by someone else between probing and binding:
	// try a few.
	for try := 0; ; try++ {
		if s.port, err = freePort(); err == nil {
			if err = s.launch(); err == nil {
				return s, nil
			}
		}
		if try == 4 {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

func (s *Server) args() []string {
	port := strconv.Itoa(s.port)
	var a []string
	switch s.kind {
	case "beanstalkd":
		a = []string{"-l", "127.0.0.1", "-p", port}
		if s.binlog {
			a = append(a, "-b", filepath.Join(s.dir, "binlog"))
		}
	default:
		a = []string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir, "--save", "",
			"--protected-mode", "no", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log")}
		if s.aof {
			a = append(a, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			a = append(a, "--appendonly", "no")
		}
		if s.cluster {
			a = append(a, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
				"--cluster-node-timeout", "2000")
		}
	}
	return append(a, s.extra...)
}

func (s *Server) launch() error {
	if s.binlog {
		if err := os.MkdirAll(filepath.Join(s.dir, "binlog"), 0o755); err != nil {
			return err
		}
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.paused = cmd, done, false
	s.mu.Unlock()
	if err := s.waitReady(done); err != nil {
		s.kill()
		return err
	}
	return nil
}

// waitReady polls until the server answers a real request, or it exits.
func (s *Server) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("dqtest: %s on port %d exited at start: %s", s.kind, s.port, s.logTail())
		default:
		}
		if last = s.probe(); last == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond) // polling a process that is starting: nothing to wait on
	}
	return fmt.Errorf("dqtest: %s on port %d not ready after %v: %v; log: %s", s.kind, s.port, readyTimeout, last, s.logTail())
}

// probe sends one request and checks the reply: beanstalkd `stats`, Redis `PING`.
func (s *Server) probe() error {
	c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	req, want := "stats\r\n", "OK "
	if s.kind != "beanstalkd" {
		req, want = "PING\r\n", "+PONG"
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("unexpected reply %q", strings.TrimSpace(line))
	}
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "stdout.log"))
	if l, _ := os.ReadFile(filepath.Join(s.dir, "redis.log")); len(l) > 0 {
		b = append(b, l...)
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return fmt.Errorf("dqtest: %s on port %d is not running", s.kind, s.port)
	}
	return s.cmd.Process.Signal(sig)
}

// kill SIGKILLs the process (also when paused) and waits for it to exit.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.paused = nil, false
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Kill sends SIGKILL and waits until the process is gone.
func (s *Server) Kill() { s.kill() }

// Restart starts the server again on the same port and data directory (after
// Kill, or killing it first), and waits until it answers.
func (s *Server) Restart() error {
	s.kill()
	var err error
	for try := 0; try < 50; try++ { // the old socket may linger a moment
		if err = s.launch(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Pause freezes the process with SIGSTOP: it keeps its socket, the kernel still
// accepts connections, nothing is answered.
func (s *Server) Pause() error {
	if err := s.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
	return nil
}

// Resume thaws a paused process with SIGCONT.
func (s *Server) Resume() error {
	if err := s.signal(syscall.SIGCONT); err != nil {
		return err
	}
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	return nil
}

// Running reports whether the process is up (paused counts as up).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Close kills the server and removes its data directory. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.kill()
	_ = os.RemoveAll(s.dir)
}
