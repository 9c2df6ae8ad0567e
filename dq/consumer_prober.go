package dq

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/claim"
	"github.com/zerodq/zerodq/internal/routine"
)

// lostClaim is a claim Redis could not be told about: one whose reply did
// not arrive (it may hold the job; outcome zero: given back as unrun), or a
// run whose finish Redis did not take (outcome and backoff: what to report).
type lostClaim struct {
	id      string
	cid     string
	slot    int
	dueMs   int64
	outcome claim.Outcome
	backoff time.Duration
	why     claim.Failure
}

// redisHealth pauses the consumer while Redis is away: nothing is reserved,
// run or deleted then. A prober checks every redisProbeInterval; when Redis
// answers again, it first reports what Redis could not take (claims whose
// replies were lost are given back; runs that ended keep their outcome), and
// only then does reserving resume: an owner's finish is accepted while no
// other consumer has claimed the job, even past its lease.
//
// go-zero's client runs every call through a breaker shared per Redis
// address; each call while Redis is away is a failure, and each call it
// rejects counts too, so the breaker kept rejecting for seconds after Redis
// was back. The prober (and the clock) therefore use a client of their own
// without it, and while Redis is known away the consumer makes no call
// through go-zero's: reserving pauses, held copies go back unclaimed,
// heartbeats skip their extend and finishes wait for the prober.
type redisHealth struct {
	c    *consumer
	side goredis.UniversalClient // probes and clock samples, no breaker
	mu   sync.Mutex
	down bool
	back chan struct{} // closed when the outage ends
	lost []lostClaim
	// probes runs the prober, one per outage; Stop ends it.
	probes *routine.Group
}

// closedCh is a channel that is always closed.
var closedCh = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (h *redisHealth) init(c *consumer) {
	h.c = c
	h.probes = routine.NewGroup()
	h.back = closedCh
	h.side = newSideClient(c.conf.Redis, c.conf.RedisTimeout)
}

// newSideClient returns a go-redis client for rc with one try per call and
// a small pool: for the prober and the clock only.
func newSideClient(rc redis.RedisConf, dialTimeout time.Duration) goredis.UniversalClient {
	var tc *tls.Config
	if rc.Tls {
		tc = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // as go-zero's own client does
	}
	const size = 2
	if rc.Type == redis.ClusterType {
		return goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs: strings.Split(rc.Host, ","), Username: rc.User, Password: rc.Pass, TLSConfig: tc,
			MaxRetries: -1, DialTimeout: dialTimeout, PoolSize: size, Protocol: 2, DisableIdentity: true,
		})
	}
	return goredis.NewClient(&goredis.Options{
		Addr: rc.Host, Username: rc.User, Password: rc.Pass, TLSConfig: tc,
		MaxRetries: -1, DialTimeout: dialTimeout, PoolSize: size, Protocol: 2, DisableIdentity: true,
	})
}

// ping reports whether Redis answers (every master, on a cluster).
func (h *redisHealth) ping(ctx context.Context) error {
	if cc, ok := h.side.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			return m.Ping(ctx).Err()
		})
	}
	return h.side.Ping(ctx).Err()
}

// nowMicros reads Redis TIME in Unix microseconds: the clock's source.
func (h *redisHealth) nowMicros(ctx context.Context) (int64, error) {
	t, err := h.side.Time(ctx).Result()
	if err != nil {
		return 0, err
	}
	return t.UnixMicro(), nil
}

// isDown reports whether Redis is known away (or not reached yet).
func (h *redisHealth) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// backCh returns a channel closed once Redis answers again; closed already
// when it is not known away.
func (h *redisHealth) backCh() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.back
}

// failed records a Redis error; the first one of an outage pauses reserving
// and starts the prober.
func (h *redisHealth) failed(err error, lc lostClaim) {
	metricErrors.Inc("redis", "claim")
	h.mu.Lock()
	defer h.mu.Unlock()
	if lc.cid != "" && len(h.lost) < 100000 {
		h.lost = append(h.lost, lc)
	}
	if h.down {
		return
	}
	select {
	case <-h.probes.Stopping():
		return
	default:
	}
	logx.Errorf("dq: redis unreachable, pausing consumption: %v", err)
	h.pauseLocked()
}

// awaitFirst pauses the consumer until Redis has answered once: the prober
// takes the clock's first offset too.
func (h *redisHealth) awaitFirst() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		h.pauseLocked()
	}
}

// pauseLocked pauses reserving and starts the prober; h.mu is held.
func (h *redisHealth) pauseLocked() {
	h.down = true
	h.back = make(chan struct{})
	h.c.gate.setPaused(pauseRedis, true)
	h.probes.Go(h.probe)
}

// probe pings Redis every redisProbeInterval until it answers and what it
// could not take is reported, then lifts the pause.
func (h *redisHealth) probe(stop <-chan struct{}) {
	for first := true; ; first = false {
		if !first && !routine.Sleep(stop, redisProbeInterval) {
			return
		}
		ctx, cancel := context.WithTimeout(h.c.ctx, redisProbeInterval)
		err := h.ping(ctx)
		cancel()
		if err != nil {
			continue
		}
		if !h.c.clock.Synced() {
			ctx, cancel := context.WithTimeout(h.c.ctx, h.c.conf.RedisTimeout)
			err := h.c.clock.Sync(ctx)
			cancel()
			if err != nil {
				continue
			}
		}
		if !h.reportLost() {
			continue
		}
		h.mu.Lock()
		h.down = false
		close(h.back)
		h.mu.Unlock()
		h.c.gate.setPaused(pauseRedis, false)
		logx.Info("dq: redis answers, consuming")
		return
	}
}

// reportLost finishes the claims Redis could not be told about: a lost
// claim as unrun, an ended run with its outcome. The copies were released
// already; the job's other copies follow the record. False if Redis failed
// again meanwhile.
func (h *redisHealth) reportLost() bool {
	h.mu.Lock()
	lost := h.lost
	h.lost = nil
	h.mu.Unlock()
	for i, lc := range lost {
		o := lc.outcome
		if o == 0 {
			o = claim.OutcomeUnrun
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(h.c.ctx, h.c.conf.RedisTimeout)
		rep, err := h.c.store.Finish(ctx, h.c.tube, lc.id, lc.cid, lc.slot, o, lc.backoff.Milliseconds(), h.c.maxFail, lc.why)
		cancel()
		if err != nil {
			h.mu.Lock()
			h.lost = append(lost[i:], h.lost...)
			h.mu.Unlock()
			return false
		}
		// Done only when Redis recorded this run's ok: a run whose lease
		// was taken over meanwhile is answered as any other copy.
		if o == claim.OutcomeOK && rep.Kind == claim.Delete && rep.Own {
			h.c.consumed(outcomeOK)
			h.c.finished.add(lc.id, lc.dueMs, sent)
		}
	}
	return true
}

// stop ends the prober and waits for it.
func (h *redisHealth) stop() { h.probes.Stop() }

// close releases the side client, once the prober and the clock are done.
func (h *redisHealth) close() { _ = h.side.Close() }
