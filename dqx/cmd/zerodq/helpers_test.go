package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestMain runs the package's tests against real servers and stops the shared
// ones at the end. The libraries' logs are silenced as in the CLI;
// ZERODQ_TEST_LOGS=1 shows them.
func TestMain(m *testing.M) {
	if os.Getenv("ZERODQ_TEST_LOGS") == "" {
		quiet()
	}
	dqtest.Main(m)
}

// serviceConfig is a go-zero service's Config as a user writes it.
type serviceConfig struct {
	Name string
	Dq   dq.DqConf
	Cron dqx.CronConf `json:",optional"`
}

// bundle is one test's queue: a yaml naming its own tube and key prefix on
// the shared servers, and the config as a service loads it.
type bundle struct {
	file string
	conf dq.DqConf
	cron dqx.CronConf
}

// setupOpts shape the yaml of a test.
type setupOpts struct {
	env       *dqtest.Env
	redis     string // Redis address instead of env's
	endpoints []string
	cron      string // the Cron section's entries, as yaml lines
	extra     string // more Dq lines
}

// setup writes the test's yaml and loads it back as a service would.
func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	if o.env == nil {
		o.env = dqtest.Shared(t)
	}
	if o.redis == "" {
		o.redis = o.env.Redis.Addr()
	}
	if o.endpoints == nil {
		o.endpoints = o.env.Endpoints()
	}
	name := dqtest.Name(t)
	var y strings.Builder
	fmt.Fprintf(&y, "Name: test-api\nDq:\n  Beanstalks:\n")
	for _, ep := range o.endpoints {
		fmt.Fprintf(&y, "    - { Endpoint: %s, Tube: %s }\n", ep, name)
	}
	fmt.Fprintf(&y, "  Redis: { Host: %s, Type: node }\n  KeyPrefix: %s\n", o.redis, name)
	y.WriteString("  DialTimeout: 300ms\n  IOTimeout: 500ms\n  MaxRetries: 3\n  RetryBackoff: 1h\n" +
		"  MaxRetryBackoff: 1h\n  TTR: 3s\n")
	y.WriteString(o.extra)
	if o.cron != "" {
		fmt.Fprintf(&y, "Cron:\n  Lookahead: 1s\n  Refresh: 250ms\n  Entries:\n%s", o.cron)
	}
	file := filepath.Join(t.TempDir(), "test-api.yaml")
	require.NoError(t, os.WriteFile(file, []byte(y.String()), 0o600))
	var sc serviceConfig
	require.NoError(t, conf.Load(file, &sc))
	return &bundle{file: file, conf: sc.Dq, cron: sc.Cron}
}

// result is one run of the CLI.
type result struct {
	code           int
	stdout, stderr string
}

// zerodq runs the CLI in-process on the bundle's yaml.
func (b *bundle) zerodq(t *testing.T, args ...string) result {
	t.Helper()
	return runCLI(t, append([]string{"-f", b.file}, args...)...)
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// ok fails the test unless the run succeeded.
func (r result) ok(t *testing.T) result {
	t.Helper()
	require.Equal(t, 0, r.code, "exit code; stderr: %s", r.stderr)
	return r
}

// failed fails the test unless the run exited with code and one line on
// stderr containing each of words.
func (r result) failed(t *testing.T, code int, words ...string) {
	t.Helper()
	require.Equal(t, code, r.code, "exit code; stdout: %s; stderr: %s", r.stdout, r.stderr)
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	require.Len(t, lines, 1, "one line of error: %q", r.stderr)
	require.True(t, strings.HasPrefix(lines[0], "zerodq: "), "error line %q", lines[0])
	for _, w := range words {
		require.Contains(t, lines[0], w)
	}
}

// decode reads the run's stdout as JSON into v.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(r.stdout), v), "stdout: %s", r.stdout)
}

// producer returns a producer of the bundle's queue, closed when t ends.
func (b *bundle) producer(t *testing.T) dq.Producer {
	t.Helper()
	p, err := dq.NewProducer(b.conf)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// runs counts handler starts per job ID.
type runs struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *runs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[id]++
}

func (r *runs) of(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[id]
}

// startConsumer runs a consumer of the bundle's queue until the test ends;
// handle decides each job's fate by its body.
func (b *bundle) startConsumer(t *testing.T, handle func(ctx context.Context, body string) error) *runs {
	t.Helper()
	r := &runs{}
	cs, err := dq.NewConsumer(b.conf, dq.WithHandle(func(ctx context.Context, body []byte) error {
		job, _ := dq.JobFromContext(ctx)
		r.add(job.ID)
		return handle(ctx, string(body))
	}))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		cs.Start()
	}()
	t.Cleanup(func() {
		cs.Stop()
		<-done
	})
	return r
}

// seeded is a queue holding a job in every state.
type seeded struct {
	waiting, done, dead, retrying, revoked, running string
	runs                                            *runs
	release                                         chan struct{} // ends the running job's handler
	heal                                            atomic.Bool   // makes the dying job succeed
}

// seed enqueues and runs jobs until the queue holds one in each state:
// waiting (due in an hour), done, dead (ErrSkipRetry), retrying (failed,
// next attempt in an hour), revoked, and running (its handler blocks until
// release is closed or the test ends).
func (b *bundle) seed(t *testing.T) *seeded {
	t.Helper()
	s := &seeded{release: make(chan struct{})}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(s.release) }) })
	s.runs = b.startConsumer(t, func(ctx context.Context, body string) error {
		switch body {
		case "dies":
			if s.heal.Load() {
				return nil
			}
			return fmt.Errorf("bad input: %w", dq.ErrSkipRetry)
		case "fails":
			return errors.New("upstream said 503")
		case "blocks":
			select {
			case <-s.release:
			case <-ctx.Done():
			}
			return nil
		}
		return nil
	})
	p := b.producer(t)
	ctx := context.Background()
	var err error
	s.waiting, err = p.DelayCtx(ctx, []byte("later"), time.Hour)
	require.NoError(t, err)
	s.revoked, err = p.DelayCtx(ctx, []byte("revoked"), time.Hour)
	require.NoError(t, err)
	require.NoError(t, p.RevokeCtx(ctx, s.revoked))
	s.done, err = p.DelayCtx(ctx, []byte("ok"), 0)
	require.NoError(t, err)
	s.dead, err = p.DelayCtx(ctx, []byte("dies"), 0)
	require.NoError(t, err)
	s.retrying, err = p.DelayCtx(ctx, []byte("fails"), 0)
	require.NoError(t, err)
	s.running, err = p.DelayCtx(ctx, []byte("blocks"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 10*time.Second, func() bool {
		return s.runs.of(s.done) == 1 && s.runs.of(s.dead) == 1 && s.runs.of(s.retrying) == 1 &&
			s.runs.of(s.running) == 1
	}, "the due jobs ran")
	return s
}
