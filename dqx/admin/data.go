package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
)

// overview is the queue at a glance: the overview page and /api/overview.
type overview struct {
	Queue       string             `json:"queue"`
	Tubes       []dq.TubeStats     `json:"tubes"` // one per node
	Total       dq.TubeStats       `json:"total"`
	Paused      dq.PauseInfo       `json:"paused"`
	Consumers   int                `json:"consumers"`
	InFlight    int                `json:"in_flight"`
	Held        int                `json:"held"`
	DeadLetters int64              `json:"dead_letters"`
	Outcomes    map[string]int64   `json:"outcomes"`
	Rates       map[string]float64 `json:"rates,omitempty"` // per second, latest interval
	RatesKnown  bool               `json:"rates_known"`
	Lateness    latenessView       `json:"lateness"`
	Alerts      []alert            `json:"alerts"`
	// Unavailable names the parts that could not be read, with why.
	Unavailable []string `json:"unavailable,omitempty"`
}

// outcomeNames are the consumers' outcomes in the order pages show them.
var outcomeNames = []string{"ok", "retry", "dead", "duplicate", "revoked", "malformed"}

// queueRead is what the overview and the nodes page read of a queue, each
// part with its error.
type queueRead struct {
	ns       []dq.NodeInfo
	nsErr    error
	st       dq.Stats
	stErr    error
	cs       []dq.ConsumerInfo
	csErr    error
	ps       []dq.ProducerInfo
	psErr    error
	pause    dq.PauseInfo
	pauseErr error
}

// readQueue reads the queue's stats, registries and pause (and its nodes
// when nodes is set) at once.
func (d *Dashboard) readQueue(ctx context.Context, in *dq.Inspector, nodes bool) queueRead {
	var (
		r  queueRead
		wg sync.WaitGroup
	)
	if nodes {
		wg.Go(func() { r.ns, r.nsErr = in.Nodes(ctx) })
	}
	wg.Go(func() { r.st, r.stErr = in.Stats(ctx) })
	wg.Go(func() { r.cs, r.csErr = in.Consumers(ctx) })
	wg.Go(func() { r.ps, r.psErr = in.Producers(ctx) })
	wg.Go(func() { r.pause, r.pauseErr = in.Paused(ctx) })
	wg.Wait()
	return r
}

// readOverview reads everything the overview shows, at once.
func (d *Dashboard) readOverview(ctx context.Context, in *dq.Inspector) (overview, []dq.ConsumerInfo) {
	r := d.readQueue(ctx, in, false)
	o := overview{Queue: in.Queue(), Outcomes: map[string]int64{}}
	if r.stErr != nil {
		o.Unavailable = append(o.Unavailable, "stats: "+r.stErr.Error())
	} else {
		o.Tubes, o.Total = r.st.Tubes, r.st.Total
		o.Consumers, o.InFlight, o.Held = r.st.Consumers, r.st.InFlight, r.st.Held
		o.DeadLetters, o.Outcomes = r.st.DeadLetters, r.st.Outcomes
		o.Paused.Paused = r.st.Paused
		o.Unavailable = append(o.Unavailable, r.st.Errors...)
	}
	if r.pauseErr == nil {
		o.Paused = r.pause
	}
	h := health{stats: r.st}
	if r.csErr != nil {
		o.Unavailable = append(o.Unavailable, "consumers: "+r.csErr.Error())
	} else {
		d.samples.addConsumers(r.cs)
		h.consumers = r.cs
		h.rates, h.reserve, h.ratesKnown = d.samples.rates(r.cs)
		o.Rates, o.RatesKnown = h.rates, h.ratesKnown
		h.lateness = mergeLateness(r.cs)
		o.Lateness = newLatenessView(h.lateness)
	}
	if r.psErr != nil {
		o.Unavailable = append(o.Unavailable, "producers: "+r.psErr.Error())
	} else {
		d.samples.addProducers(r.ps)
		h.producers, h.prodKnown = r.ps, true
	}
	o.Alerts = evaluate(d.c.Alerts, h)
	if o.Alerts == nil {
		o.Alerts = []alert{}
	}
	return o, r.cs
}

// nodeRow is one node of the health matrix.
type nodeRow struct {
	dq.NodeInfo
	Counts        dq.TubeStats `json:"counts"`
	Puts          int64        `json:"puts"`
	PutFailed     int64        `json:"put_failed"`
	PutUncertain  int64        `json:"put_uncertain"`
	ReserveErrors int64        `json:"reserve_errors"`
}

// nodesView is the nodes page and /api/nodes.
type nodesView struct {
	Queue       string       `json:"queue"`
	Nodes       []nodeRow    `json:"nodes"`
	Paused      dq.PauseInfo `json:"paused"`
	Unavailable []string     `json:"unavailable,omitempty"`
}

func (d *Dashboard) readNodes(ctx context.Context, in *dq.Inspector) nodesView {
	r := d.readQueue(ctx, in, true)
	v := nodesView{Queue: in.Queue(), Paused: r.pause}
	for _, e := range []struct {
		what string
		err  error
	}{{"nodes", r.nsErr}, {"stats", r.stErr}, {"consumers", r.csErr}, {"producers", r.psErr}, {"pause", r.pauseErr}} {
		if e.err != nil {
			v.Unavailable = append(v.Unavailable, e.what+": "+e.err.Error())
		}
	}
	if r.csErr == nil {
		d.samples.addConsumers(r.cs)
	}
	if r.psErr == nil {
		d.samples.addProducers(r.ps)
	}
	for _, n := range r.ns {
		row := nodeRow{NodeInfo: n}
		for _, t := range r.st.Tubes {
			if t.Node == n.Endpoint {
				row.Counts = t
			}
		}
		for _, p := range r.ps {
			pc := p.Nodes[n.Endpoint]
			row.Puts += pc.Puts
			row.PutFailed += pc.Failed
			row.PutUncertain += pc.Uncertain
		}
		for _, c := range r.cs {
			row.ReserveErrors += c.ReserveErrors[n.Endpoint]
		}
		v.Nodes = append(v.Nodes, row)
	}
	return v
}

// latenessView is a Lateness with its summary in milliseconds: the
// lateness page, the overview and the SSE "lateness" event.
type latenessView struct {
	Queue   string    `json:"queue,omitempty"`
	At      time.Time `json:"at"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Count   int64     `json:"count"`
	MinMs   float64   `json:"min_ms"`
	P50Ms   float64   `json:"p50_ms"`
	P99Ms   float64   `json:"p99_ms"`
	MaxMs   float64   `json:"max_ms"`
	Buckets []int64   `json:"buckets"`
	// Bounds are the buckets' upper bounds in milliseconds (the last
	// bucket has none).
	Bounds []float64 `json:"bounds_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newLatenessView(l dq.Lateness) latenessView {
	v := latenessView{
		At: time.Now().UTC(), From: l.From, To: l.To, Count: l.Count,
		Buckets: make([]int64, len(dq.LatenessBounds)+1),
		Bounds:  make([]float64, len(dq.LatenessBounds)),
	}
	copy(v.Buckets, l.Buckets)
	for i, b := range dq.LatenessBounds {
		v.Bounds[i] = ms(b)
	}
	if l.Count > 0 {
		v.MinMs, v.MaxMs = ms(l.Min), ms(l.Max)
		v.P50Ms, v.P99Ms = ms(l.Quantile(0.5)), ms(l.Quantile(0.99))
	}
	return v
}

// readLateness merges the consumers' latest intervals.
func (d *Dashboard) readLateness(ctx context.Context, in *dq.Inspector) (latenessView, error) {
	cs, err := in.Consumers(ctx)
	if err != nil {
		return newLatenessView(dq.Lateness{}), err
	}
	d.samples.addConsumers(cs)
	v := newLatenessView(mergeLateness(cs))
	v.Queue = in.Queue()
	return v, nil
}

// consumersView is the consumers page and /api/consumers.
type consumersView struct {
	Queue     string            `json:"queue"`
	Consumers []dq.ConsumerInfo `json:"consumers"`
	Producers []dq.ProducerInfo `json:"producers"`
	// Drift names the config fields the consumers disagree on.
	Drift       []string `json:"drift"`
	Unavailable []string `json:"unavailable,omitempty"`
}

func (d *Dashboard) readConsumers(ctx context.Context, in *dq.Inspector) consumersView {
	v := consumersView{Queue: in.Queue(), Consumers: []dq.ConsumerInfo{}, Producers: []dq.ProducerInfo{}, Drift: []string{}}
	cs, err := in.Consumers(ctx)
	if err != nil {
		v.Unavailable = append(v.Unavailable, "consumers: "+err.Error())
	} else {
		d.samples.addConsumers(cs)
		v.Consumers = cs
		if drift := dq.ConfigDrift(cs); len(drift) > 0 {
			v.Drift = drift
		}
	}
	ps, err := in.Producers(ctx)
	if err != nil {
		v.Unavailable = append(v.Unavailable, "producers: "+err.Error())
	} else {
		d.samples.addProducers(ps)
		if ps != nil {
			v.Producers = ps
		}
	}
	return v
}

// jobView is one looked-up job.
type jobView struct {
	ID       string      `json:"id"`
	Info     *dq.JobInfo `json:"info,omitempty"`
	Err      string      `json:"error,omitempty"`
	Timeline []timeEvent `json:"timeline,omitempty"`
	// Body is the job's body as rendered for the page (WithBodyFormatter);
	// empty when it is hidden (Config.HideBodies) or no copy of it is
	// reachable (dq.JobInfo.Body).
	Body string `json:"body,omitempty"`
}

// timeEvent is one line of a job's timeline.
type timeEvent struct {
	Kind string    `json:"kind"` // enqueued, attempt, copy, retry, running, end, dead, revoked
	At   time.Time `json:"at,omitzero"`
	Text string    `json:"text"`
}

// maxLookup bounds the IDs one lookup reads.
const maxLookup = 50

// jobIDs reads the IDs of a lookup: id parameters, and ids split on commas
// and white space.
func jobIDs(q map[string][]string) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] && len(ids) < maxLookup {
			seen[s] = true
			ids = append(ids, s)
		}
	}
	for _, s := range q["id"] {
		add(s)
	}
	for _, s := range q["ids"] {
		for _, f := range splitIDs(s) {
			add(f)
		}
	}
	return ids
}

// splitIDs splits pasted IDs on commas and white space (a textarea posts
// its lines with CRLF).
func splitIDs(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

func (d *Dashboard) readJobs(ctx context.Context, in *dq.Inspector, ids []string) []jobView {
	out := make([]jobView, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := jobView{ID: id}
			info, err := in.Job(ctx, id)
			switch {
			case errors.Is(err, dq.ErrJobNotFound):
				v.Err = "no such job: Redis has no record of it and its ID carries no due time"
			case err != nil:
				v.Err = err.Error()
			default:
				// The answer carries the body as rendered, never raw: a
				// formatter may leave out what must not be shown.
				body := info.Body
				info.Body = nil
				v.Info = &info
				v.Timeline = timeline(info)
				if body != nil && !d.c.HideBodies {
					v.Body = d.format(in.Queue(), body)
				}
			}
			out[i] = v
		}()
	}
	wg.Wait()
	return out
}

// timeline orders what is known of a job: its due time, each attempt, each
// copy met, and how it ended.
func timeline(j dq.JobInfo) []timeEvent {
	var ev []timeEvent
	if !j.DueAt.IsZero() {
		ev = append(ev, timeEvent{Kind: "enqueued", At: j.DueAt, Text: "due"})
	}
	for _, r := range j.Runs {
		text := fmt.Sprintf("attempt %d on %s from %s #%d", r.Attempt, r.Consumer, r.Node, r.JobNum)
		if r.Outcome != "" {
			text += ": " + r.Outcome
		}
		if !r.End.IsZero() {
			text += fmt.Sprintf(" after %v", r.End.Sub(r.Start).Round(time.Millisecond))
		}
		ev = append(ev, timeEvent{Kind: "attempt", At: r.Start, Text: text})
	}
	for _, c := range j.Copies {
		ev = append(ev, timeEvent{Kind: "copy", Text: fmt.Sprintf("copy %s #%d: %s", c.Node, c.JobNum, c.Fate)})
	}
	switch j.State {
	case dq.StateDone:
		ev = append(ev, timeEvent{Kind: "end", At: lastEnd(j), Text: "done"})
	case dq.StateDead:
		ev = append(ev, timeEvent{Kind: "dead", At: lastEnd(j), Text: "dead letter"})
	case dq.StateRevoked:
		ev = append(ev, timeEvent{Kind: "revoked", Text: "revoked"})
	case dq.StateRetrying:
		ev = append(ev, timeEvent{Kind: "retry", At: j.NextAttempt, Text: "next attempt"})
	case dq.StateRunning:
		ev = append(ev, timeEvent{Kind: "running", At: j.LeaseUntil, Text: "running, lease until"})
	case dq.StateWaiting:
		ev = append(ev, timeEvent{Kind: "waiting", Text: "waiting"})
	}
	return ev
}

func lastEnd(j dq.JobInfo) time.Time {
	var t time.Time
	for _, r := range j.Runs {
		if r.End.After(t) {
			t = r.End
		}
	}
	return t
}

// deadQuery is a dead-letter filter as the page and the API take it.
type deadQuery struct {
	Match string
	Since time.Time
	Limit int
	After string // cursor: "<unix nanos>-<id>" of the last entry of the previous page
}

const (
	defaultDeadLimit = 50
	maxDeadLimit     = 1000
)

func parseDeadQuery(q map[string][]string) (deadQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	dqy := deadQuery{Match: get("match"), Limit: defaultDeadLimit, After: get("after")}
	if s := get("since"); s != "" {
		t, err := parseSince(s)
		if err != nil {
			return dqy, err
		}
		dqy.Since = t
	}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxDeadLimit {
			return dqy, fmt.Errorf("limit %q: a number from 1 to %d", s, maxDeadLimit)
		}
		dqy.Limit = n
	}
	return dqy, nil
}

// parseSince reads an RFC 3339 time, a datetime-local value (UTC), or a
// duration back from now ("1h").
func parseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since %q: an RFC 3339 time or a duration such as 1h", s)
}

// deadPage is one page of dead letters.
type deadPage struct {
	Count   int             `json:"count"` // every entry the filter selects
	Letters []dq.DeadLetter `json:"letters"`
	Next    string          `json:"next,omitempty"` // after= of the next page
}

func (dqy deadQuery) filter() dq.DeadFilter {
	return dq.DeadFilter{Since: dqy.Since, Match: dqy.Match}
}

func (d *Dashboard) readDead(ctx context.Context, in *dq.Inspector, dqy deadQuery) (deadPage, error) {
	p := deadPage{Letters: []dq.DeadLetter{}}
	n, err := in.CountDead(ctx, dqy.filter())
	if err != nil {
		return p, err
	}
	p.Count = n
	f := dqy.filter()
	skipTo := ""
	if dqy.After != "" {
		ns, id, ok := strings.Cut(dqy.After, "-")
		v, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			return p, fmt.Errorf("after %q: not a cursor this dashboard gave", dqy.After)
		}
		if at := time.Unix(0, v); at.After(f.Since) {
			f.Since = at
		}
		skipTo = id
	}
	// Entries buried in the same instant as the cursor's come again from
	// Since: read a few more and skip through the cursor's.
	extra := 0
	if skipTo != "" {
		extra = 100
	}
	f.Limit = dqy.Limit + extra + 1
	ls, err := in.DeadLetters(ctx, f)
	if err != nil {
		return p, err
	}
	if skipTo != "" {
		for i, l := range ls {
			if l.ID == skipTo {
				ls = ls[i+1:]
				break
			}
		}
	}
	if len(ls) > dqy.Limit {
		ls = ls[:dqy.Limit]
		last := ls[len(ls)-1]
		p.Next = fmt.Sprintf("%d-%s", last.At.UnixNano(), last.ID)
	}
	p.Letters = append(p.Letters, ls...)
	return p, nil
}

// cronView is the cron page and /api/cron.
type cronView struct {
	Owner   dqx.CronOwner   `json:"owner"`
	Entries []cronEntryView `json:"entries"`
	Err     string          `json:"error,omitempty"`
}

type cronEntryView struct {
	dqx.CronEntryInfo
	Next []dqx.CronFire     `json:"next"`
	Past []dqx.CronPastFire `json:"past"`
	Err  string             `json:"error,omitempty"`
}

const (
	cronNext = 5
	cronPast = 10
)

func (d *Dashboard) readCron(ctx context.Context) (cronView, error) {
	v := cronView{Entries: []cronEntryView{}}
	if d.cron == nil {
		return v, errNoCron
	}
	owner, err := d.cron.Owner(ctx)
	if err != nil {
		return v, err
	}
	v.Owner = owner
	entries, err := d.cron.Entries(ctx)
	if err != nil {
		return v, err
	}
	v.Entries = make([]cronEntryView, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := cronEntryView{CronEntryInfo: e, Next: []dqx.CronFire{}, Past: []dqx.CronPastFire{}}
			next, err := d.cron.Next(ctx, e.Name, cronNext)
			if err == nil {
				ev.Next = next
				var past []dqx.CronPastFire
				past, err = d.cron.Past(ctx, e.Name, cronPast)
				if past != nil {
					ev.Past = past
				}
			}
			if err != nil {
				ev.Err = err.Error()
			}
			v.Entries[i] = ev
		}()
	}
	wg.Wait()
	return v, nil
}

var errNoCron = errors.New("admin: no cron schedule (WithCron)")
