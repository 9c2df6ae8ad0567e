package dqx

import (
	"context"
	"strconv"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// The envelope headers that dqx writes and reads.
const (
	// TypeHeader carries the job type a Mux routes on.
	TypeHeader = "type"
	// CronHeader carries the name of the cron entry a job is a fire of.
	CronHeader = "dqx-cron"
	// FireHeader carries a fire's scheduled time in Unix milliseconds. It
	// differs from the job's DueAt for a missed fire run late.
	FireHeader = "dqx-fire"
)

// cronTypePrefix starts the default job type of a cron entry, keeping cron
// entries apart from the types of typed jobs.
const cronTypePrefix = "cron:"

// CronType returns the job type of the fires of the entry named name when
// the entry sets no Type of its own.
func CronType(name string) string { return cronTypePrefix + name }

// Fire describes the cron fire a handler is running.
type Fire struct {
	// Entry is the name of the cron entry.
	Entry string
	// At is the time the fire was scheduled for.
	At time.Time
}

// FireFromContext returns the Fire that a handler's ctx belongs to, and
// false when the job is not a fire of a Scheduler.
func FireFromContext(ctx context.Context) (Fire, bool) {
	job, ok := dq.JobFromContext(ctx)
	if !ok {
		return Fire{}, false
	}
	name, ok := job.Headers[CronHeader]
	if !ok {
		return Fire{}, false
	}
	ms, err := strconv.ParseInt(job.Headers[FireHeader], 10, 64)
	if err != nil {
		return Fire{}, false
	}
	return Fire{Entry: name, At: time.UnixMilli(ms)}, true
}
