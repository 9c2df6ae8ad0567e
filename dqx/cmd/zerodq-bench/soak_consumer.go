package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
)

// The soak's consumers are subprocesses, so that a fault can SIGKILL one in
// the middle of its handlers. Each consumes the soak's three tubes and appends
// its handlers' starts and ends to a file of its own in the soak directory,
// one line per event, each written with a single write(2) so that a kill
// leaves whole lines:
//
//	S <job id> <seq> <attempt> <pid> <unix µs> <node>   the handler started
//	D <job id> <seq> <attempt> <pid> <unix µs> <node>   the handler's work is done
//	X <job id> <seq> <attempt> <pid> <unix µs> <node>   the handler gave the job up (ErrSkipRetry)
//
// A D or X line is written only after the work and only while the handler's
// ctx is alive, the way a handler commits its side effects. <node> is the
// endpoint the run's copy came from.

// The soak's tubes, by what their jobs test.
const (
	tubeMain = ""      // generated IDs; an operator kicks its delayed jobs
	tubeIDs  = "-ids"  // WithID jobs under a short DedupeTTL, enqueued again once their record expired
	tubeDead = "-dead" // jobs that die on their first attempt; an operator kicks their dead letters
)

var soakTubes = []string{tubeMain, tubeIDs, tubeDead}

// soakShutdownTimeout is the consumers' ShutdownTimeout.
const soakShutdownTimeout = 2 * time.Second

// soakSettings are the consumer settings the parent and its consumer
// subprocesses share.
type soakSettings struct {
	endpoints []string
	redis     string
	prefix    string
	tube      string        // the main tube; the others add a suffix (tubeIDs, tubeDead)
	workers   int           // Workers of the main tube's consumer
	ttr       time.Duration // TTR
	dedupeTTL time.Duration // DedupeTTL of the WithID tube
	work      time.Duration
	dieAfter  int // the consumer SIGKILLs itself after this many completions; 0: never
}

// conf is the DqConf of one of the soak's tubes: short leases and back-offs
// so that jobs of a killed consumer come back within seconds, and retries to
// spare so that no job dies of the faults. Only the WithID tube has a short
// DedupeTTL: a dead letter must keep its record until it is kicked.
func (s soakSettings) conf(suffix string) dq.DqConf {
	c := dq.DqConf{
		Redis:           redis.RedisConf{Host: s.redis, Type: redis.NodeType},
		Replicas:        copies,
		Workers:         s.workers,
		TTR:             s.ttr,
		MaxRetries:      100,
		Timeout:         10 * time.Second,
		ShutdownTimeout: soakShutdownTimeout,
		RetryBackoff:    100 * time.Millisecond,
		MaxRetryBackoff: time.Second,
		KeyPrefix:       s.prefix,
		DedupeTTL:       time.Hour,
	}
	if suffix != tubeMain {
		c.Workers = max(2, s.workers/4)
	}
	if suffix == tubeIDs {
		c.DedupeTTL = s.dedupeTTL
	}
	for _, ep := range s.endpoints {
		c.Beanstalks = append(c.Beanstalks, dq.Beanstalk{Endpoint: ep, Tube: s.tube + suffix})
	}
	return c
}

func (s soakSettings) args(dir string) []string {
	return []string{"consumer", "-beanstalks", strings.Join(s.endpoints, ","), "-redis", s.redis,
		"-prefix", s.prefix, "-tube", s.tube, "-workers", strconv.Itoa(s.workers), "-ttr", s.ttr.String(),
		"-dedupe-ttl", s.dedupeTTL.String(), "-work", s.work.String(), "-dir", dir,
		"-die-after", strconv.Itoa(s.dieAfter)}
}

// consumerStartTimeout bounds how long a consumer subprocess retries
// NewConsumer, which fails while Redis is down.
const consumerStartTimeout = 30 * time.Second

// soakConsumerMain is the soak's consumer subprocess: it runs a consumer per
// tube until SIGTERM (or SIGKILL), then stops them together, the way go-zero's
// service group does.
func soakConsumerMain(ctx context.Context, args []string, stderr io.Writer) error {
	var s soakSettings
	var beanstalks, dir string
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.StringVar(&beanstalks, "beanstalks", "", "")
	fs.StringVar(&s.redis, "redis", "", "")
	fs.StringVar(&s.prefix, "prefix", "", "")
	fs.StringVar(&s.tube, "tube", "", "")
	fs.IntVar(&s.workers, "workers", 8, "")
	fs.DurationVar(&s.ttr, "ttr", 5*time.Second, "")
	fs.DurationVar(&s.dedupeTTL, "dedupe-ttl", 5*time.Second, "")
	fs.DurationVar(&s.work, "work", 5*time.Millisecond, "")
	fs.StringVar(&dir, "dir", "", "")
	fs.IntVar(&s.dieAfter, "die-after", 0, "")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	s.endpoints = strings.Split(beanstalks, ",")
	logx.DisableStat()
	logx.SetWriter(logx.NewWriter(stderr))

	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("records-%d.log", os.Getpid())),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	r := newRecorder(f, s.dieAfter)
	var css []dq.Consumer
	for _, suffix := range soakTubes {
		cs, err := newSoakConsumer(ctx, s.conf(suffix), soakHandler(r, s.work, suffix == tubeDead))
		if err != nil {
			for _, c := range css {
				c.Stop()
			}
			if ctx.Err() != nil {
				return nil // told to stop while Redis was still away
			}
			return err
		}
		css = append(css, cs)
	}
	var wg sync.WaitGroup
	for _, cs := range css {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.Start()
		}()
	}
	<-ctx.Done()
	for _, cs := range css {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.Stop()
		}()
	}
	wg.Wait()
	return nil
}

// newSoakConsumer retries NewConsumer while Redis is down, within
// consumerStartTimeout.
func newSoakConsumer(ctx context.Context, c dq.DqConf, h dq.ConsumeHandler) (dq.Consumer, error) {
	giveUp := time.Now().Add(consumerStartTimeout)
	for {
		cs, err := dq.NewConsumer(c, h)
		if err == nil {
			return cs, nil
		}
		if time.Now().After(giveUp) {
			return nil, err
		}
		if !sleepUntil(ctx, time.Now().Add(200*time.Millisecond)) {
			return nil, ctx.Err()
		}
	}
}

// recorder writes a consumer's record lines.
type recorder struct {
	f           *os.File
	pid         int
	dieAfter    int
	completions atomic.Int64
}

func newRecorder(f *os.File, dieAfter int) *recorder {
	return &recorder{f: f, pid: os.Getpid(), dieAfter: dieAfter}
}

func (r *recorder) record(kind string, j dq.Job, seq uint64) error {
	_, err := r.f.WriteString(formatEvent(event{Kind: kind, ID: j.ID, Seq: seq, Attempt: j.Attempt, PID: r.pid,
		At: time.Now(), Endpoint: j.Endpoint}))
	return err
}

// soakHandler records each run. A job of the dead tube (doomed) gives up on
// its first attempt with ErrSkipRetry and succeeds on any later one: a kick of
// its dead letter runs it once more, to completion.
func soakHandler(r *recorder, work time.Duration, doomed bool) dq.ConsumeHandler {
	return dq.WithHandle(func(ctx context.Context, body []byte) error {
		j, ok := dq.JobFromContext(ctx)
		seq, _, okBody := parseBody(body)
		if !ok || !okBody {
			return fmt.Errorf("%w: not a soak job", dq.ErrSkipRetry)
		}
		if err := r.record(eventStart, j, seq); err != nil {
			return err
		}
		if !sleepUntil(ctx, time.Now().Add(work)) {
			return ctx.Err()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if doomed && j.Attempt == 1 {
			if err := r.record(eventDead, j, seq); err != nil {
				return err
			}
			return fmt.Errorf("%w: doomed on its first attempt", dq.ErrSkipRetry)
		}
		if err := r.record(eventDone, j, seq); err != nil {
			return err
		}
		if r.dieAfter > 0 && r.completions.Add(1) == int64(r.dieAfter) {
			// Done, recorded, and gone before the finish reaches Redis.
			_ = syscall.Kill(r.pid, syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return nil
	})
}

// consumerProc is one consumer subprocess as the soak runs it.
type consumerProc struct {
	slot int
	cmd  *exec.Cmd
	pid  int
	log  *os.File
	dies bool // started with -die-after: its exit is a planned fault
	// startedAt is when the process was started; until its signal handler
	// is in place, a SIGTERM ends it without a drain.
	startedAt time.Time
	exited    chan struct{}
	waitErr   error     // set before exited closes
	endedAt   time.Time // set before exited closes
}

func startConsumerProc(s soakSettings, dir string, slot, generation int) (*consumerProc, error) {
	cmd, err := selfCommand(s.args(dir)...)
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, fmt.Sprintf("consumer-%d-%d.log", slot, generation)))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &consumerProc{slot: slot, cmd: cmd, pid: cmd.Process.Pid, log: log, dies: s.dieAfter > 0,
		exited: make(chan struct{}), startedAt: time.Now()}
	go func() {
		p.waitErr = cmd.Wait()
		p.endedAt = time.Now()
		log.Close()
		close(p.exited)
	}()
	return p, nil
}

// hasExited reports whether the process has ended.
func (p *consumerProc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process and waits for it to be gone.
func (p *consumerProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop asks the process to drain with SIGTERM and kills it when it has not
// exited within timeout. It reports an exit other than a clean one.
func (p *consumerProc) stop(timeout time.Duration) error {
	if p.hasExited() {
		return p.exitErr()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.exitErr()
	case <-timer.C:
		p.kill()
		return fmt.Errorf("consumer %d did not stop within %v of SIGTERM", p.pid, timeout)
	}
}

func (p *consumerProc) exitErr() error {
	if p.waitErr == nil {
		return nil
	}
	out, _ := os.ReadFile(p.log.Name())
	return exitError(fmt.Sprintf("consumer %d", p.pid), p.waitErr, out)
}
