package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// injectFaults injects one fault at a time at random intervals until ctx
// ends, every kind once per round in a random order, and restores what it
// broke before it returns.
func (s *soak) injectFaults(ctx context.Context) error {
	defer s.bg.Wait() // consumers draining after a SIGTERM
	var round []string
	for {
		gap := time.Duration((0.5 + s.rnd.Float64()) * float64(s.o.faultEvery))
		if !sleepUntil(ctx, time.Now().Add(gap)) {
			return nil
		}
		if err := s.restartCrashed(); err != nil {
			return err
		}
		if len(round) == 0 {
			for _, k := range faultKinds {
				if slices.Contains(s.o.faults, k) {
					round = append(round, k)
				}
			}
			if len(round) == 0 {
				continue
			}
			s.rnd.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		}
		kind := round[0]
		round = round[1:]
		if err := s.inject(kind); err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
	}
}

// inject applies one fault and undoes it; it always restores the server or
// consumer, also when ctx has ended, so that the drain runs on a whole system.
func (s *soak) inject(kind string) error {
	f := fault{Kind: kind, Start: time.Now()}
	between := func(lo, hi time.Duration) {
		d := lo + time.Duration(s.rnd.Int64N(int64(hi-lo)))
		time.Sleep(d) // the fault lasts this long: the wait is the fault
	}
	var err error
	switch kind {
	case faultNodeKill:
		n := s.env.Nodes[s.rnd.IntN(len(s.env.Nodes))]
		f.Target = n.Addr()
		n.Kill()
		between(300*time.Millisecond, 1500*time.Millisecond)
		err = restart(n)
	case faultNodePause:
		n := s.env.Nodes[s.rnd.IntN(len(s.env.Nodes))]
		f.Target = n.Addr()
		if err = n.Pause(); err == nil {
			between(500*time.Millisecond, 2500*time.Millisecond)
			err = n.Resume()
		}
	case faultRedisRestart:
		f.Target = s.env.Redis.Addr()
		s.env.Redis.Kill()
		between(100*time.Millisecond, 800*time.Millisecond)
		err = restart(s.env.Redis)
	case faultRedisOutage:
		f.Target = s.env.Redis.Addr()
		s.env.Redis.Kill()
		between(s.o.ttr+time.Second, s.o.longestOutage())
		err = restart(s.env.Redis)
	case faultConsumerKill:
		p := s.victim()
		f.Target, f.PID = fmt.Sprintf("consumer %d", p.pid), p.pid
		f.Start = time.Now()
		p.kill()
		err = s.startConsumer(p.slot)
	case faultConsumerTerm:
		// A rolling deploy: the old process drains while its replacement
		// starts at once.
		p := s.victim()
		f.Target, f.PID = fmt.Sprintf("consumer %d", p.pid), p.pid
		f.Start = time.Now()
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			stopErr := p.stop(consumerStopTimeout)
			f.End = time.Now()
			s.record(f)
			if stopErr != nil {
				s.mu.Lock()
				s.crashErrs = append(s.crashErrs, stopErr.Error())
				s.mu.Unlock()
			}
		}()
		return s.startConsumer(p.slot)
	case faultKickDelayed:
		// The main tube holds no buried jobs, so a kick there moves its
		// delayed ones: copies ready long before they are due.
		ep := s.settings.endpoints[s.rnd.IntN(len(s.settings.endpoints))]
		f.Endpoint, f.Target = ep, ep+"/"+s.settings.tube
		f.Count, err = kick(ep, s.settings.tube, func(buried int) bool { return buried == 0 })
	case faultKickBuried:
		ep := s.nodeWithDeadLetters()
		tube := s.settings.tube + tubeDead
		f.Endpoint, f.Target = ep, ep+"/"+tube
		f.Count, err = kick(ep, tube, func(buried int) bool { return buried > 0 })
	}
	switch {
	case kind != faultKickDelayed && kind != faultKickBuried:
	case f.Count >= 0:
		f.Target += " (" + strconv.Itoa(f.Count) + " kicked)"
	case kind == faultKickDelayed:
		f.Target += " (not kicked: the tube holds buried jobs)"
	default:
		f.Target += " (not kicked: no dead letters)"
	}
	f.End = time.Now()
	s.record(f)
	return err
}

// consumerStopTimeout bounds a consumer's drain after SIGTERM: its Stop takes
// ShutdownTimeout and 1.5 s more at most (DESIGN.md, Stop).
const consumerStopTimeout = 10 * time.Second

// victim picks a consumer to kill or stop. A consumer that is to die on its
// own (-die-after) is spared, so that its planned death, and the double it
// causes, surely happen; so is one started less than consumerSettle ago,
// whose SIGTERM handler may not be in place yet (it waits for one to settle).
func (s *soak) victim() *consumerProc {
	for {
		s.mu.Lock()
		victims := make([]*consumerProc, 0, len(s.procs))
		for _, q := range s.procs {
			if !q.dies {
				victims = append(victims, q)
			}
		}
		if len(victims) == 0 {
			victims = slices.Clone(s.procs)
		}
		settled := slices.DeleteFunc(slices.Clone(victims), func(q *consumerProc) bool {
			return time.Since(q.startedAt) < consumerSettle
		})
		if len(settled) > 0 {
			p := settled[s.rnd.IntN(len(settled))]
			s.mu.Unlock()
			return p
		}
		s.mu.Unlock()
		time.Sleep(100 * time.Millisecond) // the wait for a consumer to settle is the schedule's
	}
}

// consumerSettle is how long a consumer runs before it may be killed or
// stopped.
const consumerSettle = time.Second

// nodeWithDeadLetters picks a node holding dead letters in the dead tube, or
// any node when none does (a kick there then moves delayed jobs of that tube).
func (s *soak) nodeWithDeadLetters() string {
	var with []string
	for _, ep := range s.settings.endpoints {
		if st, err := tubeStats(ep, s.settings.tube+tubeDead); err == nil && st["current-jobs-buried"] > 0 {
			with = append(with, ep)
		}
	}
	if len(with) == 0 {
		with = s.settings.endpoints
	}
	return with[s.rnd.IntN(len(with))]
}

// kick kicks every job it can in the tube on one node, as an operator would
// (beanstalkd kicks the buried jobs, or the delayed ones when none is buried),
// when the tube's buried count passes check; it returns how many it kicked,
// or -1 when check said no.
func kick(endpoint, tube string, check func(buried int) bool) (int, error) {
	c, err := dialNode(endpoint)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	st, err := c.Tube(tube).Stats()
	if errors.Is(err, beanstalk.ErrNotFound) {
		return 0, nil // no such tube: nothing in it
	}
	if err != nil {
		return 0, err
	}
	buried, _ := strconv.Atoi(st["current-jobs-buried"])
	if !check(buried) {
		return -1, nil
	}
	return c.Tube(tube).Kick(1 << 30)
}

// kickAllDeadLetters kicks the dead tube's buried jobs on every node, for
// the drain, and books each kick that moved a job.
func (s *soak) kickAllDeadLetters() {
	tube := s.settings.tube + tubeDead
	for _, ep := range s.settings.endpoints {
		at := time.Now()
		n, err := kick(ep, tube, func(buried int) bool { return buried > 0 })
		if err == nil && n > 0 {
			s.record(fault{Kind: faultFinalKick, Endpoint: ep, Target: fmt.Sprintf("%s/%s (%d kicked)", ep, tube, n),
				Count: n, Start: at, End: time.Now()})
		}
	}
}

// nodeConn is a beanstalkd connection with one deadline for all its calls:
// go-beanstalk sets none, and the soak's calls are short.
type nodeConn struct{ *beanstalk.Conn }

func dialNode(endpoint string) (nodeConn, error) {
	nc, err := net.DialTimeout("tcp", endpoint, time.Second)
	if err != nil {
		return nodeConn{}, err
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	return nodeConn{beanstalk.NewConn(nc)}, nil
}

func (c nodeConn) Tube(name string) *beanstalk.Tube { return beanstalk.NewTube(c.Conn, name) }

// tubeStats reads the job counts of a tube on one node (all zero when the
// tube does not exist there).
func tubeStats(endpoint, tube string) (map[string]int, error) {
	c, err := dialNode(endpoint)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := c.Tube(tube).Stats()
	out := map[string]int{}
	if errors.Is(err, beanstalk.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for k, v := range st {
		if n, err := strconv.Atoi(v); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// copiesLeft counts the copies still ready, delayed, reserved or buried in
// the soak's tubes (-1 when a node does not answer).
func (s *soak) copiesLeft() int {
	total := 0
	for _, ep := range s.settings.endpoints {
		for _, suffix := range soakTubes {
			st, err := tubeStats(ep, s.settings.tube+suffix)
			if err != nil {
				return -1
			}
			for _, k := range []string{"current-jobs-ready", "current-jobs-delayed", "current-jobs-reserved", "current-jobs-buried"} {
				total += st[k]
			}
		}
	}
	return total
}

// restart restarts a server, trying again a few times: its port may linger.
func restart(srv *dqtest.Server) error {
	var err error
	for range 3 {
		if err = srv.Restart(); err == nil {
			return nil
		}
	}
	return err
}

func (s *soak) startConsumer(slot int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	settings := s.settings
	if s.gen == 1 {
		settings.dieAfter = s.o.dieAfter
	}
	p, err := startConsumerProc(settings, s.dir, slot, s.gen)
	if err != nil {
		return err
	}
	if slot < len(s.procs) {
		s.procs[slot] = p
	} else {
		s.procs = append(s.procs, p)
	}
	return nil
}

// restartCrashed starts consumers again that exited without being killed
// and books each as a fault: a planned death (-die-after), or a crash.
func (s *soak) restartCrashed() error {
	s.mu.Lock()
	var ended []*consumerProc
	for _, p := range s.procs {
		if p.hasExited() {
			ended = append(ended, p)
		}
	}
	s.mu.Unlock()
	for _, p := range ended {
		f := fault{Kind: faultConsumerDie, Target: fmt.Sprintf("consumer %d", p.pid), PID: p.pid,
			Start: p.endedAt, End: p.endedAt}
		if !p.dies {
			f.Kind = faultConsumerCrash
			s.mu.Lock()
			s.crashErrs = append(s.crashErrs, fmt.Sprint(p.exitErr()))
			s.mu.Unlock()
			s.progress("consumer %d exited on its own: %v", p.pid, p.exitErr())
		}
		s.record(f)
		if err := s.startConsumer(p.slot); err != nil {
			return err
		}
	}
	return nil
}

func (s *soak) record(f fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f)
	s.mu.Unlock()
}

// stopConsumers drains every consumer with SIGTERM and returns what went
// wrong on the way.
func (s *soak) stopConsumers() []string {
	s.mu.Lock()
	procs := slices.Clone(s.procs)
	s.mu.Unlock()
	var errs []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.stop(consumerStopTimeout); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
