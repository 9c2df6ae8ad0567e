package dqx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	red "github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
)

// CronInspector looks into a Scheduler's shared state in Redis: which config
// owns the schedule, the entries of a config with their latest recorded
// fire, each entry's coming fires and whether they are written yet, and the
// fires of the recorded window with what became of their jobs. It only
// reads, and reads only the schedule's own keys (bounded by the fire
// retention and the window), so it is safe against production at any size.
// It is safe for concurrent use.
type CronInspector struct {
	conf      CronConf
	entries   []*entry
	cfg       string // this config's digest
	queue     string
	state     *cronState
	retention time.Duration
	clock     Clock
	in        *dq.Inspector
	ownsIn    bool
}

// CronInspectorOption configures a CronInspector.
type CronInspectorOption func(*CronInspector)

// WithDqInspector makes the CronInspector read fire jobs through in, an
// Inspector of the same queue, instead of one of its own; it does not close
// in.
func WithDqInspector(in *dq.Inspector) CronInspectorOption {
	return func(ci *CronInspector) { ci.in = in }
}

// WithInspectorClock makes the CronInspector read the time from c instead of
// Redis, as WithClock does for a Scheduler.
func WithInspectorClock(c Clock) CronInspectorOption {
	return func(ci *CronInspector) { ci.clock = c }
}

// ErrNoCronEntry is returned for an entry name that the CronConf does not
// list.
var ErrNoCronEntry = errors.New("dqx: no such cron entry")

// NewCronInspector returns a CronInspector of the schedule that cc names on
// the queue of c. It validates both (errors match dq.ErrBadConfig or
// ErrBadCron); no server is contacted until a method is called.
func NewCronInspector(c dq.DqConf, cc CronConf, opts ...CronInspectorOption) (*CronInspector, error) {
	sc, err := openSchedule(c, cc, true)
	if err != nil {
		return nil, fmt.Errorf("dqx: cron inspector: %w", err)
	}
	c = sc.dq
	ci := &CronInspector{
		conf:      sc.conf,
		entries:   sc.entries,
		queue:     c.QueueName(),
		retention: sc.retention,
		state:     sc.state,
		cfg:       sc.cfg,
	}
	for _, o := range opts {
		o(ci)
	}
	if ci.in == nil {
		if ci.in, err = dq.NewInspector(c); err != nil {
			return nil, err
		}
		ci.ownsIn = true
	}
	return ci, nil
}

// Close closes the Inspector the CronInspector opened for itself.
func (ci *CronInspector) Close() error {
	if ci.ownsIn {
		return ci.in.Close()
	}
	return nil
}

// CronOwner is the schedule's ownership as its state in Redis keeps it.
type CronOwner struct {
	// Schedule is the CronConf Name, Queue the queue it writes to.
	Schedule string `json:"schedule"`
	Queue    string `json:"queue"`
	// Config is the digest of the inspected config's entries, Owner that of
	// the config owning the schedule ("" when no scheduler has run, or its
	// state expired).
	Config string `json:"config"`
	Owner  string `json:"owner,omitempty"`
	// Owns tells whether the inspected config owns the schedule: its
	// entries are the ones written.
	Owns bool `json:"owns"`
	// ToppedUp is the owner's latest top-up; StaleAfter how long it may be
	// idle before another config's replica takes over, and Alive whether it
	// is within that.
	ToppedUp   time.Time     `json:"topped_up,omitzero"`
	StaleAfter time.Duration `json:"stale_after"`
	Alive      bool          `json:"alive"`
	// Generation counts the fire IDs handed out so far (see Scheduler).
	Generation int64 `json:"generation"`
	// Now is the time the state was read at (Redis time).
	Now time.Time `json:"now"`
}

// CronEntryInfo is one entry of the inspected config and its state.
type CronEntryInfo struct {
	Name   string       `json:"name"`
	Spec   string       `json:"spec"`
	Zone   string       `json:"zone"` // the IANA zone the spec is read in
	Missed MissedPolicy `json:"missed"`
	Type   string       `json:"type"`
	// Tag starts the fire IDs of this version of the entry.
	Tag string `json:"tag"`
	// LastFire is the latest fire recorded for the entry name (by any
	// version of it), zero when none; NextFire the next fire of the spec.
	LastFire time.Time `json:"last_fire,omitzero"`
	NextFire time.Time `json:"next_fire,omitzero"`
	// Ahead counts the fires of the coming window that have an ID, Pending
	// those of them no replica has written yet.
	Ahead   int `json:"ahead"`
	Pending int `json:"pending"`
}

// CronFire is one fire of an entry.
type CronFire struct {
	Entry string    `json:"entry"`
	At    time.Time `json:"at"` // in the entry's zone
	// ID is the job ID the state gave the fire ("" when it has none yet).
	ID string `json:"id,omitempty"`
	// Written tells whether a replica wrote the fire's job (it has an ID
	// and is no longer pending).
	Written bool `json:"written"`
	// OtherVersion is true when the ID belongs to another version of the
	// entry (a config that changed it); Doomed when that fire is being
	// revoked by a takeover.
	OtherVersion bool `json:"other_version,omitempty"`
	Doomed       bool `json:"doomed,omitempty"`
}

// The verdicts of a past fire.
const (
	// FireRanOnce: its job is done, its handler succeeded once.
	FireRanOnce = "ran once"
	// FireRanTwice: its job's runs show more than one success (a fault
	// beyond what zerodq guards against).
	FireRanTwice = "ran more than once"
	// FireNotYet: its job waits, runs or retries.
	FireNotYet = "not yet"
	// FireDead: its job failed past its retries (a dead letter).
	FireDead = "dead"
	// FireRevoked: its job was revoked (a changed entry's fire).
	FireRevoked = "revoked"
	// FireUnwritten: it has an ID, but no replica wrote its job.
	FireUnwritten = "not written"
	// FireNoRecord: written, but its job's record is gone.
	FireNoRecord = "no record"
	// FireMissedSkipped: no replica recorded it in time, and the entry's
	// policy is skip.
	FireMissedSkipped = "missed (skipped)"
	// FireMissedLater: no replica recorded it in time; the policy once ran
	// a later missed fire instead.
	FireMissedLater = "missed (a later one ran)"
)

// CronPastFire is a fire of the recorded window and what became of it.
type CronPastFire struct {
	CronFire
	// Verdict is one of the Fire... constants.
	Verdict string `json:"verdict"`
	// Job is what the queue's Inspector knows of the fire's job (nil when
	// the fire has no ID, or no record).
	Job *dq.JobInfo `json:"job,omitempty"`
}

// stateView is what one read of the state returns.
type stateView struct {
	now     time.Time
	hash    map[string]string
	fires   []red.Z // ID → ms, in the range read
	pending map[string]bool
	doomed  map[string]bool
}

// read reads the state's hash and, when to > from, its fires between from
// and to (ms, inclusive), with Redis time, in one round trip.
func (ci *CronInspector) read(ctx context.Context, from, to int64, withHash bool) (stateView, error) {
	k := ci.state.keys
	var (
		tm            *red.TimeCmd
		hash          *red.MapStringStringCmd
		fires, pd, dm *red.ZSliceCmd
	)
	rng := &red.ZRangeBy{Min: strconv.FormatInt(from, 10), Max: strconv.FormatInt(to, 10)}
	err := ci.state.rds.PipelinedCtx(ctx, func(p redis.Pipeliner) error {
		tm = p.Time(ctx)
		if withHash {
			hash = p.HGetAll(ctx, k[0])
		}
		if to >= from {
			fires = p.ZRangeByScoreWithScores(ctx, k[1], rng)
			dm = p.ZRangeByScoreWithScores(ctx, k[2], rng)
			pd = p.ZRangeByScoreWithScores(ctx, k[3], rng)
		}
		return nil
	})
	if err != nil {
		return stateView{}, fmt.Errorf("dqx: cron inspector: reading the state of %s: %w", ci.conf.Name, err)
	}
	v := stateView{now: tm.Val(), pending: map[string]bool{}, doomed: map[string]bool{}}
	if ci.clock != nil {
		v.now = ci.clock.Now()
	}
	if withHash {
		v.hash = hash.Val()
	}
	if to >= from {
		v.fires = fires.Val()
		for _, z := range pd.Val() {
			v.pending[z.Member.(string)] = true
		}
		for _, z := range dm.Val() {
			v.doomed[z.Member.(string)] = true
			v.fires = append(v.fires, z) // a doomed fire left the fires set
		}
	}
	return v, nil
}

// now returns the inspector's time: its clock's, or Redis time.
func (ci *CronInspector) now(ctx context.Context) (time.Time, error) {
	if ci.clock != nil {
		return ci.clock.Now(), nil
	}
	v, err := ci.read(ctx, 1, 0, false)
	return v.now, err
}

// Owner reads who owns the schedule.
func (ci *CronInspector) Owner(ctx context.Context) (CronOwner, error) {
	v, err := ci.read(ctx, 1, 0, true)
	if err != nil {
		return CronOwner{}, err
	}
	return ci.owner(v), nil
}

func (ci *CronInspector) owner(v stateView) CronOwner {
	o := CronOwner{Schedule: ci.conf.Name, Queue: ci.queue, Config: ci.cfg, Owner: v.hash["cfg"], Now: v.now}
	o.Owns = o.Owner != "" && o.Owner == ci.cfg
	if ms, err := strconv.ParseInt(v.hash["cfgt"], 10, 64); err == nil {
		o.ToppedUp = time.UnixMilli(ms)
	}
	if digest, ms, ok := strings.Cut(v.hash["cfgs"], " "); ok && digest == o.Owner {
		if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
			o.StaleAfter = time.Duration(n) * time.Millisecond
		}
	}
	o.Alive = o.Owner != "" && !o.ToppedUp.IsZero() && v.now.Sub(o.ToppedUp) <= o.StaleAfter
	o.Generation, _ = strconv.ParseInt(v.hash["gen"], 10, 64)
	return o
}

// Entries lists the entries of the inspected config, in config order, with
// what the state holds of each.
func (ci *CronInspector) Entries(ctx context.Context) ([]CronEntryInfo, error) {
	now, err := ci.now(ctx)
	if err != nil {
		return nil, err
	}
	v, err := ci.read(ctx, now.UnixMilli(), math.MaxInt64, true)
	if err != nil {
		return nil, err
	}
	out := make([]CronEntryInfo, 0, len(ci.entries))
	for _, e := range ci.entries {
		loc := e.location()
		info := CronEntryInfo{Name: e.Name, Spec: e.Spec, Zone: loc.String(), Missed: e.Missed,
			Type: e.Type, Tag: e.tag, NextFire: e.sched.next(v.now).In(loc)}
		if ms, err := strconv.ParseInt(v.hash["l:"+e.Name], 10, 64); err == nil {
			info.LastFire = time.UnixMilli(ms).In(loc)
		}
		for _, z := range v.fires {
			id := z.Member.(string)
			if fireTag(id) == e.tag && !v.doomed[id] {
				info.Ahead++
				if v.pending[id] {
					info.Pending++
				}
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func (ci *CronInspector) entry(name string) (*entry, error) {
	for _, e := range ci.entries {
		if e.Name == name {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: %q in schedule %s", ErrNoCronEntry, name, ci.conf.Name)
}

// Next returns the next n fires of the entry (n < 1: one), at or after now,
// in its zone, each with its ID and whether it is written yet.
func (ci *CronInspector) Next(ctx context.Context, name string, n int) ([]CronFire, error) {
	e, err := ci.entry(name)
	if err != nil {
		return nil, err
	}
	now, err := ci.now(ctx)
	if err != nil {
		return nil, err
	}
	n = max(n, 1)
	ats := make([]time.Time, 0, n)
	for t := e.sched.next(now.Add(-time.Nanosecond)); !t.IsZero() && len(ats) < n; t = e.sched.next(t) {
		ats = append(ats, t)
	}
	if len(ats) == 0 {
		return nil, nil
	}
	v, err := ci.read(ctx, ats[0].UnixMilli(), ats[len(ats)-1].UnixMilli(), false)
	if err != nil {
		return nil, err
	}
	out := make([]CronFire, len(ats))
	for i, at := range ats {
		out[i] = ci.fireAt(e, at, v)
	}
	return out, nil
}

// fireAt is the fire of e at at as the state v holds it. A fire of this
// version of the entry wins over one of another version.
func (ci *CronInspector) fireAt(e *entry, at time.Time, v stateView) CronFire {
	f := CronFire{Entry: e.Name, At: at.In(e.location())}
	ms := float64(at.UnixMilli())
	for _, z := range v.fires {
		id := z.Member.(string)
		tag := fireTag(id)
		if z.Score != ms || fireEntry(tag) != e.Name || (f.ID != "" && !f.OtherVersion) {
			continue
		}
		f.ID, f.OtherVersion, f.Doomed = id, tag != e.tag, v.doomed[id]
		f.Written = !v.pending[id]
	}
	return f
}

// Past returns the fires of the entry in the recorded window (from its
// earliest fire the state still holds, at most the fire retention back, to
// now), newest first, at most n (n < 1: all), each with what became of its
// job. A fire time of the spec with no ID is a missed fire.
func (ci *CronInspector) Past(ctx context.Context, name string, n int) ([]CronPastFire, error) {
	e, err := ci.entry(name)
	if err != nil {
		return nil, err
	}
	now, err := ci.now(ctx)
	if err != nil {
		return nil, err
	}
	from := now.Add(-ci.retention)
	v, err := ci.read(ctx, from.UnixMilli(), now.UnixMilli()-1, false)
	if err != nil {
		return nil, err
	}
	var first time.Time
	for _, z := range v.fires {
		if fireEntry(fireTag(z.Member.(string))) != e.Name {
			continue
		}
		if at := time.UnixMilli(int64(z.Score)); first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		return nil, nil
	}
	var ats []time.Time
	for t := e.sched.next(first.Add(-time.Nanosecond)); !t.IsZero() && t.Before(now); t = e.sched.next(t) {
		ats = append(ats, t)
	}
	slices.Reverse(ats)
	if n > 0 && len(ats) > n {
		ats = ats[:n]
	}

	out := make([]CronPastFire, 0, len(ats))
	laterRan := false // a missed fire later than this one has an ID (policy once)
	for _, at := range ats {
		p := CronPastFire{CronFire: ci.fireAt(e, at, v)}
		switch {
		case p.ID == "" && e.Missed == MissedRunOnce && laterRan:
			p.Verdict = FireMissedLater
		case p.ID == "":
			p.Verdict = FireMissedSkipped
		case !p.Written:
			p.Verdict = FireUnwritten
		default:
			job, err := ci.in.Job(ctx, p.ID)
			switch {
			case errors.Is(err, dq.ErrJobNotFound):
				p.Verdict = FireNoRecord
			case err != nil:
				return nil, fmt.Errorf("dqx: cron inspector: fire %s: %w", p.ID, err)
			default:
				p.Job = &job
				p.Verdict = pastVerdict(job)
			}
		}
		if p.ID != "" {
			laterRan = true
		}
		out = append(out, p)
	}
	return out, nil
}

// pastVerdict says what became of a fire from its job.
func pastVerdict(job dq.JobInfo) string {
	switch job.State {
	case dq.StateDone:
		ok := 0
		for _, r := range job.Runs {
			if r.Outcome == "ok" {
				ok++
			}
		}
		if ok > 1 {
			return FireRanTwice
		}
		return FireRanOnce
	case dq.StateDead:
		return FireDead
	case dq.StateRevoked:
		return FireRevoked
	default:
		return FireNotYet
	}
}

// location is the zone the entry's fires are shown in.
func (e *entry) location() *time.Location {
	if cs, ok := e.sched.(cronSchedule); ok {
		if ss, ok := cs.s.(*cron.SpecSchedule); ok && ss.Location != nil {
			return ss.Location
		}
	}
	if e.TimeZone != "" {
		if loc, err := time.LoadLocation(e.TimeZone); err == nil {
			return loc
		}
	}
	return time.UTC
}
