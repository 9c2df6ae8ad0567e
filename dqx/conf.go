package dqx

import (
	"errors"
	"fmt"
	"time"
)

// CronConf configures a Scheduler. It is meant to be loaded with go-zero's
// conf package as a named field of the service config (`Cron dqx.CronConf`),
// beside the `Dq dq.DqConf` the scheduler writes its jobs with. A CronConf
// built in Go may leave tuning fields zero: zero means the default given on
// each field.
type CronConf struct {
	// Name scopes the scheduler's state in Redis within the queue. Every
	// replica of one service uses the same Name; two services whose
	// schedulers write to the same tube need different Names, or each would
	// revoke the other's entries as removed. If empty, default cron.
	Name string `json:",default=cron"`
	// Entries are the periodic jobs. An entry removed from the list has its
	// pre-written fires revoked when a scheduler with the new list starts.
	Entries []CronEntry `json:",optional"`
	// Lookahead is how far ahead the fires are written as delayed jobs, so
	// that a restart or a deploy shorter than Lookahead misses nothing. At
	// least the next three fires of every entry are written, whatever
	// Lookahead says. If zero, default 1m.
	Lookahead time.Duration `json:",default=1m"`
	// Refresh is how often each replica tops the window up; it must be
	// shorter than Lookahead. If zero, default 5s.
	Refresh time.Duration `json:",default=5s"`
}

// CronEntry is one periodic job: every fire time of Spec becomes one job with
// Body, run once by a consumer of the queue.
type CronEntry struct {
	// Name identifies the entry: it is part of the fire IDs and of the cron
	// header the handler sees. 1 to 100 bytes of printable ASCII without
	// space, '/', '{' or '}'.
	Name string
	// Spec is a cron spec with an optional leading seconds field
	// ("*/15 * * * * *" fires every 15 seconds, "0 30 2 * * *" at 02:30:00),
	// a descriptor (@hourly, @daily, @weekly, @monthly, @yearly), or
	// "@every <duration>" (at least 1s, whole milliseconds), which fires at
	// the multiples of the interval since the Unix epoch so that every
	// replica computes the same instants. A "CRON_TZ=<zone> " prefix sets
	// the time zone, as TimeZone does.
	Spec string
	// TimeZone is the IANA zone the spec is read in, e.g. Asia/Shanghai.
	// It does not affect @every. If empty, default UTC, so that replicas
	// on hosts in different zones agree.
	TimeZone string `json:",optional"`
	// Body is the job body of every fire.
	Body string `json:",optional"`
	// Type is the job type header of the fires, for a Mux. If empty, it is
	// CronType(Name).
	Type string `json:",optional"`
	// Missed says what happens to fires that fell while no replica was
	// running (beyond what Lookahead had written): MissedSkip drops them,
	// MissedRunOnce runs the latest of them once, at start. If empty,
	// default skip.
	Missed MissedPolicy `json:",default=skip"`
}

// MissedPolicy is what a Scheduler does, at start, with the fires of an
// entry that no replica wrote in time.
type MissedPolicy string

// The missed-fire policies.
const (
	// MissedSkip drops missed fires: the entry resumes with its next fire.
	MissedSkip MissedPolicy = "skip"
	// MissedRunOnce runs the latest missed fire once, as soon as a
	// scheduler starts, however many fires were missed.
	MissedRunOnce MissedPolicy = "once"
)

// ErrBadCron is matched by every error that rejects a CronConf; the
// *CronConfError behind it names the field.
var ErrBadCron = errors.New("dqx: bad cron config")

// CronConfError reports a CronConf field whose value is not acceptable. It
// matches ErrBadCron with errors.Is.
type CronConfError struct {
	// Field is the path of the field, as in Entries[1].Spec.
	Field string
	// Value is the rejected value.
	Value any
	// Reason says what is wrong with Value.
	Reason string
}

// Error returns the message, naming the field and the rejected value.
func (e *CronConfError) Error() string {
	return fmt.Sprintf("%v: %s = %q: %s", ErrBadCron, e.Field, fmt.Sprint(e.Value), e.Reason)
}

// Is reports whether target is ErrBadCron.
func (e *CronConfError) Is(target error) bool { return target == ErrBadCron }

func badCron(field string, value any, reason string) error {
	return &CronConfError{Field: field, Value: value, Reason: reason}
}

// The defaults of CronConf's fields; the tags carry the same values.
const (
	defaultCronName  = "cron"
	defaultLookahead = time.Minute
	defaultRefresh   = 5 * time.Second
	// maxEntryName keeps a fire ID ("cron-<name>-<hash>-<ms>") within dq's
	// 200-byte limit on IDs.
	maxEntryName = 100
)

// Validate checks c after filling its zero fields with their defaults and
// returns the first problem, in field order, as a *CronConfError.
func (c CronConf) Validate() error {
	_, _, err := c.compile()
	return err
}

// withDefaults returns a copy of c whose zero fields hold their defaults.
func (c CronConf) withDefaults() CronConf {
	c.Entries = append([]CronEntry(nil), c.Entries...)
	if c.Name == "" {
		c.Name = defaultCronName
	}
	if c.Lookahead == 0 {
		c.Lookahead = defaultLookahead
	}
	if c.Refresh == 0 {
		c.Refresh = defaultRefresh
	}
	for i := range c.Entries {
		if c.Entries[i].Missed == "" {
			c.Entries[i].Missed = MissedSkip
		}
		if c.Entries[i].Type == "" {
			c.Entries[i].Type = CronType(c.Entries[i].Name)
		}
	}
	return c
}

// compile validates c and returns it with defaults filled in, and its entries
// with their schedules parsed.
func (c CronConf) compile() (CronConf, []*entry, error) {
	c = c.withDefaults()
	if reason := nameProblem(c.Name); reason != "" {
		return CronConf{}, nil, badCron("Name", c.Name, reason)
	}
	switch {
	case c.Lookahead < 0:
		return CronConf{}, nil, badCron("Lookahead", c.Lookahead, "must be positive")
	case c.Refresh < 0:
		return CronConf{}, nil, badCron("Refresh", c.Refresh, "must be positive")
	case c.Refresh >= c.Lookahead:
		return CronConf{}, nil, badCron("Refresh", c.Refresh,
			"must be shorter than Lookahead ("+c.Lookahead.String()+")")
	}

	seen := make(map[string]int, len(c.Entries))
	entries := make([]*entry, 0, len(c.Entries))
	for i, ce := range c.Entries {
		field := fmt.Sprintf("Entries[%d]", i)
		if reason := nameProblem(ce.Name); reason != "" {
			return CronConf{}, nil, badCron(field+".Name", ce.Name, reason)
		}
		if j, dup := seen[ce.Name]; dup {
			return CronConf{}, nil, badCron(field+".Name", ce.Name,
				fmt.Sprintf("duplicate of Entries[%d]", j))
		}
		seen[ce.Name] = i

		sched, err := parseSpec(ce.Spec, ce.TimeZone)
		if err != nil {
			return CronConf{}, nil, badCron(field+".Spec", ce.Spec, err.Error())
		}
		if ce.Missed != MissedSkip && ce.Missed != MissedRunOnce {
			return CronConf{}, nil, badCron(field+".Missed", ce.Missed, "must be skip or once")
		}
		entries = append(entries, newEntry(c.Name, ce, sched))
	}
	return c, entries, nil
}

// nameProblem says why name cannot be part of a job ID and a Redis key, or
// returns "".
func nameProblem(name string) string {
	if name == "" {
		return "empty name"
	}
	if len(name) > maxEntryName {
		return fmt.Sprintf("longer than %d bytes", maxEntryName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' || c == '/' || c == '{' || c == '}' {
			return fmt.Sprintf("byte %d (%q) is not printable ASCII other than space, '/', '{', '}'", i, c)
		}
	}
	return ""
}
