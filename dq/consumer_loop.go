package dq

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/internal/node"
	"github.com/zerodq/zerodq/internal/routine"
)

// reserveBatch bounds the copies one reserve round trip asks for (as many as
// the gate has room for): under a backlog, one write and one read fetch
// several.
const reserveBatch = 8

// nodeLoop reserves the copies of one beanstalkd node, up to reserveBatch
// per round trip, and hands each on (see take).
type nodeLoop struct {
	c        *consumer
	endpoint string
	tube     string
	r        *node.Reserver

	malformed atomic.Int64 // bodies buried as not an envelope
	failures  int          // consecutive reserve errors, for back-off and logging
	ask       int          // copies the next round trip asks for, at most
	inHand    atomic.Int64 // copies reserved here and not done with yet
	poll      time.Duration
}

// A reserve that waits for a job holds back, on beanstalkd's side, every
// request sent after it on its connection: the deletes, releases and touches
// of the copies reserved there, which only that connection may send. So a
// loop with copies in hand does not wait in beanstalkd: it asks for the jobs
// ready at once and, when there are none, looks again after a pause that
// doubles from pollMin to pollMax. A loop with nothing in hand waits there
// up to reserveWait.
const (
	pollMin = time.Millisecond
	pollMax = 8 * time.Millisecond
)

// nextPoll is the pause before the next look for ready jobs.
func (l *nodeLoop) nextPoll() time.Duration {
	l.poll = min(max(2*l.poll, pollMin), pollMax)
	return l.poll
}

// nextAsk sizes the next reserve round trip from the last one, which asked
// for asked copies and got got: double while they come back full (a backlog),
// back to what came when fewer did. A trickle of ready copies so costs
// beanstalkd few empty answers.
func nextAsk(asked, got int) int {
	if got >= asked {
		return min(2*asked, reserveBatch)
	}
	return max(1, got)
}

func (l *nodeLoop) run() {
	defer l.c.loopsWG.Done()
	l.ask = 1
	for {
		n := l.c.gate.enterUpTo(l.ask)
		if n == 0 {
			return
		}
		wait := reserveWait
		if l.inHand.Load() > 0 {
			wait = 0
		}
		cps, err := l.r.ReserveUpTo(n, wait)
		if err != nil {
			l.c.gate.leaveN(n)
			l.ask = 1
			if wait == 0 && errors.Is(err, node.ErrTimeout) {
				if !l.pause(l.nextPoll()) {
					return
				}
				continue
			}
			if !l.reserveFailed(err) {
				return
			}
			continue
		}
		l.poll = 0
		l.failures = 0
		l.ask = nextAsk(n, len(cps))
		l.c.gate.leaveN(n - len(cps))
		if l.c.isStopping() || !l.c.admit(len(cps)) {
			for _, cp := range cps {
				_ = cp.Release(0, 0)
			}
			l.c.gate.leaveN(len(cps))
			return
		}
		l.inHand.Add(int64(len(cps)))
		for _, cp := range cps {
			l.c.take(l, cp)
		}
	}
}

// reserveFailed handles a Reserve error; false means stop the loop.
func (l *nodeLoop) reserveFailed(err error) bool {
	switch {
	case l.c.isStopping():
		return false
	case errors.Is(err, node.ErrTimeout):
		return true
	case errors.Is(err, node.ErrDeadlineSoon):
		// A copy of ours on this connection nears its TTR: touch before
		// reserving again, or every reserve answers at once.
		l.c.touchRuns(l)
		return l.pause(50 * time.Millisecond)
	default:
		metricErrors.Inc(l.endpoint, "reserve")
		l.c.ops.reserveFailed(l.endpoint)
		l.failures++
		if l.failures == 1 || l.failures%100 == 0 {
			logx.Errorf("dq: reserve on %s: %v (failure %d)", l.endpoint, err, l.failures)
		}
		// The reserver redials on its next call, honouring its own back-off;
		// pausing here keeps a refused dial from spinning.
		return l.pause(min(time.Duration(l.failures)*100*time.Millisecond, time.Second))
	}
}

// pause waits d or until the consumer stops; false when it stops.
func (l *nodeLoop) pause(d time.Duration) bool { return routine.Sleep(l.c.stopping, d) }

// buryMalformed keeps a body that is not a valid envelope (or fails its
// HMAC) visible in the node's buried list, never running or dropping it. The
// first one per node is logged with a sample; later ones are counted.
func (l *nodeLoop) buryMalformed(cp *node.Copy, err error) {
	l.c.consumed(outcomeMalformed)
	n := l.malformed.Add(1)
	if n == 1 {
		sample := cp.Body
		if len(sample) > 64 {
			sample = sample[:64]
		}
		logx.Errorf("dq: burying malformed job %d on %s: %v; body starts %q (later ones are counted, not logged)",
			cp.ID, l.endpoint, err, sample)
	}
	if err := cp.Bury(DefaultPriority); err != nil {
		logx.Errorf("dq: bury malformed job %d on %s: %v", cp.ID, l.endpoint, err)
	}
}
