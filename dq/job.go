package dq

import (
	"context"
	"time"
)

// Job describes the job a handler is running; JobFromContext returns it.
type Job struct {
	// ID is the job's ID, as returned by the producer.
	ID string
	// Attempt counts the starts of this job, 1 for the first.
	Attempt int
	// DueAt is the exact time the job was due.
	DueAt time.Time
	// Tube is the beanstalkd tube the copy came from.
	Tube string
	// Endpoint is the beanstalkd node the copy came from.
	Endpoint string
	// Priority is the beanstalkd priority the job was enqueued with.
	Priority uint32
	// Headers are the envelope headers the job was enqueued with.
	Headers map[string]string
	// Legacy reports a go-queue body ("<unixnano>/<body>") rather than an envelope.
	Legacy bool
}

type jobKey struct{}

// JobFromContext returns the Job that a handler's ctx belongs to.
func JobFromContext(ctx context.Context) (Job, bool) {
	j, ok := ctx.Value(jobKey{}).(*Job)
	if !ok || j == nil {
		return Job{}, false
	}
	return *j, true
}

func withJob(ctx context.Context, j *Job) context.Context {
	return context.WithValue(ctx, jobKey{}, j)
}

// JobOption tunes one enqueue.
type JobOption func(*jobOptions)

type jobOptions struct {
	id       string
	priority uint32
	headers  []header
}

type header struct{ key, value string }

// DefaultPriority is the beanstalkd priority of a job enqueued without
// WithPriority (lower runs first).
const DefaultPriority uint32 = 1024

// WithID enqueues the job under the given ID instead of a generated one. The
// enqueue becomes idempotent: the same ID enqueued again while its record
// lives (until DedupeTTL after its due time) returns (id, nil), writes nothing
// and runs once; the first enqueue's due time and body stand.
func WithID(id string) JobOption {
	return func(o *jobOptions) { o.id = id }
}

// WithPriority sets the job's beanstalkd priority (0 is the most urgent).
func WithPriority(p uint32) JobOption {
	return func(o *jobOptions) { o.priority = p }
}

// WithHeader adds a header that travels with the job in its envelope and
// reaches the handler in Job.Headers (e.g. a job type).
func WithHeader(key, value string) JobOption {
	return func(o *jobOptions) { o.headers = append(o.headers, header{key, value}) }
}
