package dqx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
)

// Scheduler turns cron entries into dq jobs. It is a go-zero
// service.Service: add it to the service group of every replica of the
// service; there is no leader.
//
// Each fire of an entry (a tick) becomes one job, enqueued with dq.WithID
// under the ID that the scheduler's shared state in Redis gave that tick, so
// the replicas' enqueues of one fire collapse into one job that runs once; a
// failed or dead run is that fire's alone and never holds up the next. Every
// Refresh, each replica writes the fires of the coming Lookahead (at least
// three per entry), so a restart or deploy shorter than Lookahead misses
// nothing, and writes at once any recorded fire that came due while no
// write succeeded (every node or Redis away), for up to 10 minutes (or
// DedupeTTL less 10 s, if that is shorter: a fire written once but not noted
// may be written again only while its job's record would collapse it). Fires
// that no replica recorded in time (every replica down for longer) are
// dropped or run once, as the entry's Missed policy says.
//
// A config owns the schedule: the config of the scheduler that started last,
// or, once the owner's replicas have stopped topping up for three of the
// owner's own Refresh periods, that of any running replica. On taking over,
// a scheduler revokes the pre-written fires of entries that its config
// changed or removed, those not yet due and those no replica wrote (a fire
// with no job record left whose record may have expired counts as run), and
// gives their ticks fires of its own (a due one runs at once); fires already
// written and due belong to the config of their time and run. A tick whose
// entry is the same in both configs keeps its fire. A revoked fire ID is never used again, so
// ownership may change back and forth, any number of times, and each tick
// still runs once. Replicas still running an older config stop writing.
// Changing an entry thus takes effect when the first replica with the new
// config starts.
//
// The fires are run by a dq consumer of the same queue like any other job:
// route them with a Mux (HandleCron) or read FireFromContext in a handler.
type Scheduler struct {
	conf     CronConf
	entries  []*entry
	tags     []string
	cfg      string // digest of the entries: identifies the config
	state    *cronState
	producer dq.Producer
	ownsProd bool
	clock    Clock
	dedupe   time.Duration // the queue's DedupeTTL: how long a fire's record lives
	// redisTimeout is the queue's RedisTimeout: it bounds one Redis call.
	redisTimeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	started  bool
	wg       sync.WaitGroup
	stopOnce sync.Once

	owner   bool // whether the last top-up found this config owning; loop only
	claimed bool // whether a top-up has taken over once; loop only
}

// Clock tells a Scheduler the time. The default is Redis time, the base dq
// fires jobs on; tests inject a fixed clock to check which instants an entry
// fires at without waiting for them.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// SchedulerOption tunes a Scheduler.
type SchedulerOption func(*schedulerOptions)

type schedulerOptions struct {
	clock    Clock
	producer dq.Producer
}

// WithClock makes the scheduler read the time from c instead of Redis.
func WithClock(c Clock) SchedulerOption {
	return func(o *schedulerOptions) { o.clock = c }
}

// WithProducer makes the scheduler enqueue with p, which must write to the
// queue of the scheduler's DqConf, instead of a producer of its own; the
// scheduler does not close p.
func WithProducer(p dq.Producer) SchedulerOption {
	return func(o *schedulerOptions) { o.producer = p }
}

// dq's RedisTimeout bounds one Redis call of a top-up, and
// schedulerEnqueueTimeout the writing of the fires a top-up recorded. Once
// Stop is called, the writes go on for stopWriteGrace at most, and noting
// them written takes stopNoteTimeout at most: Stop then returns within
// stopWriteGrace + IOTimeout (a put in flight) + a Redis call or two, well
// inside go-zero's 4.5 s shutdown window with dq's default 2 s IOTimeout.
const (
	schedulerEnqueueTimeout = 3 * time.Second
	stopWriteGrace          = 500 * time.Millisecond
	stopNoteTimeout         = time.Second
)

// cfgScheme starts the config digest of schedulers that take their fire IDs
// from the recording script. Releases before it derived a fire's ID from its
// entry and time alone, and hashed no scheme.
const cfgScheme = "ids=recorded\n"

// NewScheduler returns a Scheduler of cc's entries that enqueues them on the
// queue of c. It validates both (errors match dq.ErrBadConfig or ErrBadCron)
// and connects to Redis.
func NewScheduler(c dq.DqConf, cc CronConf, opts ...SchedulerOption) (*Scheduler, error) {
	sc, err := openSchedule(c, cc, false)
	if err != nil {
		return nil, err
	}
	c, cc = sc.dq, sc.conf
	var o schedulerOptions
	for _, opt := range opts {
		opt(&o)
	}

	if sc.retention < fireRetention {
		logx.Infof("dqx: scheduler %s: DedupeTTL %v is short: a fire that could not be written by its time "+
			"is written late for %v at most", cc.Name, c.DedupeTTL, sc.retention)
	}
	s := &Scheduler{
		conf:         cc,
		entries:      sc.entries,
		state:        sc.state,
		tags:         sc.tags,
		cfg:          sc.cfg,
		clock:        o.clock,
		dedupe:       c.DedupeTTL,
		redisTimeout: c.RedisTimeout,
	}

	s.producer = o.producer
	if s.producer == nil {
		if s.producer, err = dq.NewProducer(c); err != nil {
			return nil, err
		}
		s.ownsProd = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// cronSetup is what a Scheduler and a CronInspector both derive from their
// configs: the queue's config with dq's defaults, the compiled entries with
// their tags and digest, and the schedule's state in Redis, whose owner is
// stale after three of its Refresh periods and whose fires are kept for
// retentionFor(DedupeTTL).
type cronSetup struct {
	dq        dq.DqConf
	conf      CronConf
	entries   []*entry
	tags      []string
	cfg       string
	state     *cronState
	retention time.Duration
}

// openSchedule validates c and cc and opens the schedule's state; with
// nonBlock, Redis is not contacted until the state is first used.
func openSchedule(c dq.DqConf, cc CronConf, nonBlock bool) (*cronSetup, error) {
	c, err := c.Normalized()
	if err != nil {
		return nil, err
	}
	cc, entries, err := cc.compile()
	if err != nil {
		return nil, err
	}
	rc := c.Redis
	rc.NonBlock = nonBlock
	rds, err := redis.NewRedis(rc)
	if err != nil {
		return nil, err
	}
	sc := &cronSetup{dq: c, conf: cc, entries: entries, retention: retentionFor(c.DedupeTTL)}
	for _, e := range entries {
		sc.tags = append(sc.tags, e.tag)
	}
	sc.cfg = configDigest(cc.Name, sc.tags)
	sc.state = newCronState(rds, c.KeyPrefix, c.QueueName(), cc.Name, 3*cc.Refresh, sc.retention)
	return sc, nil
}

// configDigest identifies a config of the schedule name by its entries'
// tags. The digest also names the way fire IDs are given (cfgScheme), so
// that a replica of an older release, which derives its fire IDs itself,
// counts as another config: the two never own the schedule at once.
func configDigest(name string, tags []string) string {
	sorted := slices.Sorted(slices.Values(tags))
	sum := sha256.Sum256([]byte(cfgScheme + name + "\n" + strings.Join(sorted, "\n")))
	return hex.EncodeToString(sum[:16])
}

// MustNewScheduler is NewScheduler that logs the error and exits on failure.
func MustNewScheduler(c dq.DqConf, cc CronConf, opts ...SchedulerOption) *Scheduler {
	s, err := NewScheduler(c, cc, opts...)
	logx.Must(err)
	return s
}

// Start writes the window of upcoming fires at once and then every Refresh,
// until Stop. It implements service.Service; a Start after Stop returns at
// once.
func (s *Scheduler) Start() {
	s.mu.Lock()
	if s.started || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ticker := time.NewTicker(s.conf.Refresh)
	defer ticker.Stop()
	for {
		if err := s.topUp(s.ctx); err != nil && s.ctx.Err() == nil {
			logx.WithContext(s.ctx).Errorf("dqx: scheduler %s: %v", s.conf.Name, err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Stop ends the top-ups, waits for one in progress, and closes the
// scheduler's own producer. The top-up in progress goes on writing the fires
// it recorded for 0.5 s at most; a write then in flight ends within dq's
// IOTimeout (a put to a frozen node) and a Redis call; the fires left unwritten
// are written by the next replica to top up, late if they came due. The fires
// already written stay and run. It is idempotent and safe to call
// concurrently with Start.
func (s *Scheduler) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.cancel()
		s.mu.Unlock()
		s.wg.Wait()
		if s.ownsProd {
			if err := s.producer.Close(); err != nil {
				logx.Errorf("dqx: scheduler %s: closing producer: %v", s.conf.Name, err)
			}
		}
	})
}

// topUp runs one round: take or check ownership, revoke the doomed fires
// of changed or removed entries, then record and enqueue the missed fire
// (per policy), the window of every entry, and the fires that came due with
// no replica having written them.
func (s *Scheduler) topUp(ctx context.Context) error {
	var now time.Time
	if s.clock != nil {
		now = s.clock.Now()
	}
	started := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.redisTimeout)
	res, err := s.state.sync(rctx, s.cfg, now, !s.claimed, s.entries)
	cancel()
	if err != nil {
		return err
	}
	s.claimed = true
	if res.busy {
		if s.owner {
			logx.WithContext(ctx).Infof("dqx: scheduler %s: another config owns the schedule now; "+
				"this replica stops writing fires", s.conf.Name)
		}
		s.owner = false
		return nil
	}
	s.owner = true
	now = res.now
	// kept reports whether the job record of a fire at `at`, if one was
	// written, surely still lives at local time t: records live DedupeTTL
	// past their due time at least, and the scheduler's time at t is at most
	// now plus the time since the sync was sent.
	kept := func(at, t time.Time) bool {
		return at.Add(s.dedupe).After(now.Add(t.Sub(started)))
	}

	revoked, late := s.revokeDoomed(ctx, now, res.doomed, kept)
	plan := append(s.plan(now, res.last), late...)
	rctx, cancel = context.WithTimeout(ctx, s.redisTimeout)
	owner, err := s.state.record(rctx, s.cfg, revoked, nil, plan)
	cancel()
	if err != nil || !owner {
		return err
	}
	plan = slices.DeleteFunc(plan, func(f plannedFire) bool { return f.id == "" })
	plan = append(s.unwritten(res.due), plan...) // the late ones first

	// The fires are recorded now: write them all even when Stop comes
	// meanwhile (Stop waits), within a bound of their own. A fire that
	// could not be written stays pending, and the next round writes it
	// even if it is due by then.
	ectx, cancel := writeContext(ctx)
	defer cancel()
	// Every dq.WithID write asks Redis whether the ID is taken before the
	// write's context ends.
	end, _ := ectx.Deadline()
	keptToEnd := func(at time.Time) bool { return kept(at, end) }
	var errs []error
	wrote, lost := s.enqueueAll(ectx, plan, keptToEnd, &errs)
	if len(lost) > 0 {
		// No takeover dooms a fire of this config's entries, so these were
		// revoked otherwise: by a replica of a release before generations
		// that still took itself for the owner, or by hand. A revoked ID
		// never runs: their ticks get IDs of a new generation.
		ids := make([]string, len(lost))
		for i := range lost {
			ids[i], lost[i].id, lost[i].rewrite = lost[i].id, "", false
		}
		owner, err := s.state.record(ectx, s.cfg, nil, ids, lost)
		if err != nil || !owner {
			errs = append(errs, err)
		} else {
			lost = slices.DeleteFunc(lost, func(f plannedFire) bool { return f.id == "" })
			more, _ := s.enqueueAll(ectx, lost, keptToEnd, &errs)
			wrote = append(wrote, more...)
		}
	}
	// Noted on a context of its own: the write budget may be spent, and a
	// fire written but not noted is written again later, which is safe only
	// while its record lives.
	noteTimeout := s.redisTimeout
	if ctx.Err() != nil {
		noteTimeout = stopNoteTimeout
	}
	nctx, ncancel := context.WithTimeout(context.WithoutCancel(ctx), noteTimeout)
	defer ncancel()
	if err := s.state.written(nctx, wrote); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// writeContext returns the context the fires of a top-up are written on: it
// outlives ctx (Stop) by stopWriteGrace, and ends schedulerEnqueueTimeout
// after its start at the latest. Its cancel waits for what it started.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), schedulerEnqueueTimeout)
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		grace := time.NewTimer(stopWriteGrace)
		defer grace.Stop()
		select {
		case <-grace.C:
			cancel()
		case <-wctx.Done():
		}
	})
	return wctx, func() {
		cancel()
		if !stop() {
			<-done
		}
	}
}

// errRecordMayBeGone refuses a late write of a fire whose earlier write, if
// there was one, may have run and have its record expired by now.
var errRecordMayBeGone = errors.New("it came due unwritten, and writing it this late could run it twice " +
	"(DedupeTTL is too short to collapse it with an earlier write): given up")

// enqueueAll writes the fires, and returns the IDs written (or given up,
// errRecordMayBeGone) and the fires whose IDs were found revoked; other
// failures go to errs. kept reports whether a record written for a fire at
// the given time would still live when the writes end.
func (s *Scheduler) enqueueAll(ctx context.Context, fires []plannedFire, kept func(time.Time) bool,
	errs *[]error) (wrote []string, lost []plannedFire) {
	for _, f := range fires {
		switch err := s.enqueue(ctx, f, kept); {
		case err == nil:
			wrote = append(wrote, f.id)
		case errors.Is(err, dq.ErrRevoked):
			lost = append(lost, f)
		case errors.Is(err, errRecordMayBeGone):
			wrote = append(wrote, f.id) // no longer pending
			*errs = append(*errs, err)
		default:
			*errs = append(*errs, err)
		}
	}
	return wrote, lost
}

// revokeDoomed revokes the doomed fires of changed or removed entries and
// returns the IDs now revoked. A fire that ran, or whose revoke failed, stays
// doomed, and its tick gets no other ID. A fire due already is doomed only
// if no replica confirmed writing it; revoked, it never runs, and its tick is
// returned to be run at once by this config's entry of the same name, if any.
// kept tells whether a job record of a fire would still live at a moment.
func (s *Scheduler) revokeDoomed(ctx context.Context, now time.Time, doomed []stateFire,
	kept func(at, t time.Time) bool) (done []string, late []plannedFire) {
	for _, f := range doomed {
		err := s.producer.RevokeCtx(ctx, f.id)
		switch {
		case err == nil, errors.Is(err, dq.ErrBadID), errors.Is(err, dq.ErrMaybeDone):
			done = append(done, f.id)
			if f.ms >= now.UnixMilli() {
				continue
			}
			if errors.Is(err, dq.ErrMaybeDone) && !kept(time.UnixMilli(f.ms), time.Now()) {
				// No record: the fire was never written, or it ran and its
				// record has expired since. It is revoked now either way,
				// and its tick is not run again.
				logx.WithContext(ctx).Infof("dqx: scheduler %s: stale fire %s is revoked; it may have run",
					s.conf.Name, f.id)
				continue
			}
			// Otherwise there was no record although it would still
			// live: the fire was never written.
			name := fireEntry(fireTag(f.id))
			for _, e := range s.entries {
				if e.Name == name {
					late = append(late, plannedFire{e: e, at: time.UnixMilli(f.ms), missed: true})
				}
			}
		case errors.Is(err, dq.ErrDone), errors.Is(err, dq.ErrRunning), errors.Is(err, dq.ErrDead):
		case ctx.Err() != nil:
			return done, late
		default:
			logx.WithContext(ctx).Errorf("dqx: scheduler %s: revoking stale fire %s: %v",
				s.conf.Name, f.id, err)
		}
	}
	return done, late
}

// unwritten returns the fires of this config's entries that came due with no
// replica having written them, to be written at once.
func (s *Scheduler) unwritten(due []stateFire) []plannedFire {
	var out []plannedFire
	for _, f := range due {
		tag := fireTag(f.id)
		for _, e := range s.entries {
			if e.tag == tag {
				out = append(out, plannedFire{e: e, at: time.UnixMilli(f.ms), id: f.id, missed: true,
					rewrite: true})
				break
			}
		}
	}
	return out
}

// fireTag returns the entry tag of a fire ID, "cron-<name>-<hash>.<gen>-<ms>"
// or, as written before generations, "cron-<name>-<hash>-<ms>"; it reads
// IDs as the scripts' tagOf does.
func fireTag(id string) string {
	i := strings.LastIndexByte(id, '-')
	if i < 0 || !allDigits(id[i+1:]) {
		return ""
	}
	base := id[:i]
	if j := strings.LastIndexByte(base, '.'); j >= 0 && allDigits(base[j+1:]) {
		return base[:j]
	}
	return base
}

// fireEntry returns the entry name of a tag, "cron-<name>-<hash>".
func fireEntry(tag string) string {
	rest, ok := strings.CutPrefix(tag, "cron-")
	i := strings.LastIndexByte(rest, '-')
	if !ok || i <= 0 {
		return ""
	}
	return rest[:i]
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// plan lists the ticks to record now: per entry, the missed fire if its
// policy runs one, then the window.
func (s *Scheduler) plan(now time.Time, last map[string]time.Time) []plannedFire {
	var plan []plannedFire
	for _, e := range s.entries {
		if l, ok := last[e.Name]; ok && e.Missed == MissedRunOnce && l.Before(now) {
			if f, ok := e.latestMissed(l, now); ok {
				plan = append(plan, plannedFire{e: e, at: f, missed: true})
			}
		}
		for _, f := range e.window(now, s.conf.Lookahead) {
			plan = append(plan, plannedFire{e: e, at: f})
		}
	}
	return plan
}

// enqueue writes one fire. A fire already written by this or another replica
// is a no-op (dq.WithID) while its record lives; a revoked one answers
// dq.ErrRevoked. A fire written late, after its time, whose ID may have been
// written before is refused with errRecordMayBeGone unless kept says that
// record would still live.
func (s *Scheduler) enqueue(ctx context.Context, f plannedFire, kept func(time.Time) bool) error {
	opts := []dq.JobOption{
		dq.WithID(f.id),
		dq.WithHeader(TypeHeader, f.e.Type),
		dq.WithHeader(CronHeader, f.e.Name),
		dq.WithHeader(FireHeader, strconv.FormatInt(f.at.UnixMilli(), 10)),
	}
	var err error
	switch {
	case f.missed && f.rewrite && !kept(f.at):
		err = errRecordMayBeGone
	case f.missed:
		_, err = s.producer.DelayCtx(ctx, f.e.body, 0, opts...)
	default:
		_, err = s.producer.AtCtx(ctx, f.e.body, f.at, opts...)
		if errors.Is(err, dq.ErrTimeBeforeNow) {
			// The fire came due while the window was being written. An
			// earlier top-up may have written it, and it may have run.
			err = errRecordMayBeGone
			if kept(f.at) {
				_, err = s.producer.DelayCtx(ctx, f.e.body, 0, opts...)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("dqx: scheduler %s: enqueueing fire %s: %w", s.conf.Name, f.id, err)
	}
	return nil
}
