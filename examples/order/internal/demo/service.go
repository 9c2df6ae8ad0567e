package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zeromicro/go-zero/core/stores/redis"
)

// ServicePackage is the import path of the order service.
const ServicePackage = "github.com/zerodq/zerodq/examples/order"

const (
	readyTimeout = 20 * time.Second
	// stopTimeout leaves room for go-zero's wrap-up second and the
	// consumer's drain after SIGTERM.
	stopTimeout = 10 * time.Second
)

// Build compiles the order service into dir with the given extra go build
// flags and returns the binary's path. It runs the go command, so the working
// directory must be inside this module.
func Build(ctx context.Context, dir string, flags ...string) (string, error) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the order service: %w", err)
	}
	bin := filepath.Join(dir, "order-api")
	args := append([]string{"build", "-o", bin}, flags...)
	cmd := exec.CommandContext(ctx, gotool, append(args, ServicePackage)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", ServicePackage, err, out)
	}
	return bin, nil
}

// The dashboard the service mounts, as the demo configures it and as
// etc/order-api.yaml does: read-only, behind basic auth for one demo user.
const (
	DashboardPath     = "/zerodq/"
	DashboardUser     = "demo"
	DashboardPassword = "zerodq-demo"
	// DashboardHash is DashboardPassword's bcrypt hash, the value of the
	// user in the config.
	DashboardHash = "$2a$10$gCo1i8pC6uvYKqBfotmdReFPe5TubG9AzpjKtopowqRktGNXC3bxC"
)

// ServiceConfig is what WriteConfig puts in the service's yaml.
type ServiceConfig struct {
	Port       int
	Beanstalks []string
	Tube       string
	Redis      redis.RedisConf
	KeyPrefix  string
	// DevServerPort, if not zero, turns on go-zero's DevServer on that
	// loopback port, with the Prometheus metrics at /metrics.
	DevServerPort int
}

// WriteConfig writes c as the service's yaml config file: quiet logs, client
// chosen delays, a tube and key prefix of the run's own, the DevServer if c
// asks for one, and the read-only dashboard with the demo user.
func WriteConfig(path string, c ServiceConfig) error {
	var b strings.Builder
	// JSON strings are valid yaml scalars: whatever the password holds, it
	// is quoted right.
	q := func(s string) string { j, _ := json.Marshal(s); return string(j) }
	fmt.Fprintf(&b, "Name: order-api\nMode: dev\nHost: 127.0.0.1\nPort: %d\n", c.Port)
	b.WriteString("Log:\n  Mode: console\n  Encoding: plain\n  Stat: false\n")
	if c.DevServerPort != 0 {
		// Without this section go-zero starts no DevServer, and zerodq's
		// metrics record nothing.
		fmt.Fprintf(&b, "DevServer:\n  Enabled: true\n  Host: 127.0.0.1\n  Port: %d\n"+
			"  EnableMetrics: true\n  MetricsPath: /metrics\n", c.DevServerPort)
	}
	b.WriteString("Dq:\n  Beanstalks:\n")
	for _, ep := range c.Beanstalks {
		fmt.Fprintf(&b, "    - { Endpoint: %s, Tube: %s }\n", q(ep), q(c.Tube))
	}
	fmt.Fprintf(&b, "  Redis: { Host: %s, Type: %s, User: %s, Pass: %s, Tls: %t }\n",
		q(c.Redis.Host), q(cmpOr(c.Redis.Type, redis.NodeType)), q(c.Redis.User), q(c.Redis.Pass), c.Redis.Tls)
	fmt.Fprintf(&b, "  KeyPrefix: %s\n  DedupeTTL: 10m\n", q(c.KeyPrefix))
	b.WriteString("Order:\n  CancelAfter: 1m\n  ClientDelays: true\n")
	fmt.Fprintf(&b, "Dashboard:\n  Prefix: %s\n  Actions: false\n  Users:\n    %s: %s\n",
		q(strings.TrimSuffix(DashboardPath, "/")), q(DashboardUser), q(DashboardHash))
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Service is the order service running as a child process.
type Service struct {
	// URL is the base URL of its API.
	URL     string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// StartService runs bin with the config file, its output going to logPath,
// and waits until its API answers on port.
func StartService(ctx context.Context, bin, configPath, logPath string, port int) (*Service, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-f", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &Service{
		URL:     "http://127.0.0.1:" + strconv.Itoa(port),
		cmd:     cmd,
		logPath: logPath,
		done:    make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()

	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls the API until it answers (404 for an unknown order is an
// answer), the process exits or the time is up.
func (s *Service) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(s.URL + "/orders/readiness-probe")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("order service exited at start (%v); its log:\n%s", s.waitErr, s.LogTail(30))
		case <-deadline.C:
			return fmt.Errorf("order service not answering on %s after %v; its log:\n%s", s.URL, readyTimeout, s.LogTail(30))
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM, go-zero's graceful shutdown, and waits for the process
// to exit; one that takes longer than stopTimeout is killed. It returns the
// error of an exit other than a clean one.
func (s *Service) Stop() error {
	select {
	case <-s.done:
		return s.exitErr()
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.exitErr()
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("order service still running %v after SIGTERM: killed", stopTimeout)
	}
}

func (s *Service) exitErr() error {
	if s.waitErr == nil {
		return nil
	}
	var exit *exec.ExitError
	if errors.As(s.waitErr, &exit) {
		return fmt.Errorf("order service exited with %v; its log:\n%s", exit, s.LogTail(30))
	}
	return s.waitErr
}

// Exited is closed when the process has exited.
func (s *Service) Exited() <-chan struct{} { return s.done }

// LogTail returns the last n lines the service wrote.
func (s *Service) LogTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
