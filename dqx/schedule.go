package dqx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// schedule yields the fire times of an entry.
type schedule interface {
	// next returns the first fire strictly after t, or the zero time when
	// there is none.
	next(t time.Time) time.Time
}

// everySchedule fires at the multiples of its interval since the Unix epoch.
// cron's own @every counts from the moment it is asked, so two replicas
// started a moment apart would disagree on every fire time.
type everySchedule struct{ ms int64 }

func (s everySchedule) next(t time.Time) time.Time {
	ms := t.UnixMilli()
	n := ms - ms%s.ms
	if ms < 0 && ms%s.ms != 0 {
		n -= s.ms // floor, for times before the epoch
	}
	return time.UnixMilli(n + s.ms)
}

// cronSchedule is a parsed cron spec in its time zone.
type cronSchedule struct{ s cron.Schedule }

func (s cronSchedule) next(t time.Time) time.Time { return s.s.Next(t) }

// specParser accepts five fields, or six with leading seconds, and
// descriptors.
var specParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// minEvery keeps an @every entry from flooding the queue with fires.
const minEvery = time.Second

// parseSpec compiles spec, read in the zone tz (UTC when empty).
func parseSpec(spec, tz string) (sched schedule, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("empty spec")
	}

	// The zone prefix is handled here: the parser would fall back to the
	// host's zone when there is none, and panics on a prefix alone.
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		prefix, rest, _ := strings.Cut(spec, " ")
		if tz != "" {
			return nil, errors.New("time zone given both in the spec and in TimeZone")
		}
		_, tz, _ = strings.Cut(prefix, "=")
		if tz == "" {
			return nil, errors.New("empty time zone prefix")
		}
		spec = strings.TrimSpace(rest)
		if spec == "" {
			return nil, errors.New("nothing after the time zone prefix")
		}
	}
	loc := time.UTC
	if tz != "" {
		if loc, err = time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("time zone %q: %w", tz, err)
		}
	}

	if fields := strings.Fields(spec); fields[0] == "@every" {
		if len(fields) != 2 {
			return nil, errors.New("@every takes one duration")
		}
		d, err := time.ParseDuration(fields[1])
		switch {
		case err != nil:
			return nil, err
		case d < minEvery:
			return nil, fmt.Errorf("@every interval %v is shorter than %v", d, minEvery)
		case d%time.Millisecond != 0:
			return nil, fmt.Errorf("@every interval %v is not whole milliseconds", d)
		}
		return everySchedule{ms: d.Milliseconds()}, nil
	}

	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("unparsable spec: %v", r)
		}
	}()
	s, err := specParser.Parse(spec)
	if err != nil {
		return nil, err
	}
	cs, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("unsupported spec %q", spec)
	}
	cs.Location = loc
	return cronSchedule{s: cs}, nil
}

// minFires is how many fires of each entry the window holds at least, so
// that an entry firing less often than Lookahead is still written ahead.
const minFires = 3

// maxWindowFires bounds one top-up of one entry.
const maxWindowFires = 1000

// entry is a validated CronEntry with its schedule and the tag that its fire
// IDs start with.
type entry struct {
	CronEntry
	sched schedule
	// tag is "cron-<name>-<hash>", the hash covering everything that shapes
	// the entry's jobs: a changed entry gets new fire IDs, and the fires
	// written under the old ones can be told apart and revoked. The fire
	// IDs are the tag, a generation and the fire time (see cronState).
	tag  string
	body []byte
}

func newEntry(scheduler string, ce CronEntry, sched schedule) *entry {
	h := sha256.New()
	for _, part := range []string{scheduler, ce.Name, ce.Spec, ce.TimeZone, ce.Type, ce.Body} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{':'})
		h.Write([]byte(part))
	}
	sum := hex.EncodeToString(h.Sum(nil))[:8]
	return &entry{
		CronEntry: ce,
		sched:     sched,
		tag:       "cron-" + ce.Name + "-" + sum,
		body:      []byte(ce.Body),
	}
}

// window returns the fires at or after now and before now+lookahead, and at
// least minFires of them.
func (e *entry) window(now time.Time, lookahead time.Duration) []time.Time {
	horizon := now.Add(lookahead)
	var fires []time.Time
	// next is strictly after its argument: step back a nanosecond so that a
	// fire exactly at now is part of the window.
	for t := e.sched.next(now.Add(-time.Nanosecond)); !t.IsZero(); t = e.sched.next(t) {
		if (!t.Before(horizon) && len(fires) >= minFires) || len(fires) >= maxWindowFires {
			break
		}
		fires = append(fires, t)
	}
	return fires
}

// latestMissed returns the latest fire strictly between last and now, if
// any. It looks back from now over a span that doubles until it holds a fire
// or reaches last, so a long outage costs a few steps, not one per fire.
func (e *entry) latestMissed(last, now time.Time) (time.Time, bool) {
	for span := time.Second; ; span *= 2 {
		from := now.Add(-span)
		if from.Before(last) || span <= 0 {
			from = last
		}
		f := e.sched.next(from)
		if !f.IsZero() && f.Before(now) {
			for {
				g := e.sched.next(f)
				if g.IsZero() || !g.Before(now) {
					return f, true
				}
				f = g
			}
		}
		if from.Equal(last) {
			return time.Time{}, false
		}
	}
}
