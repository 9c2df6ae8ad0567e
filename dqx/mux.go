package dqx

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/zerodq/zerodq/dq"
)

// Mux is a dq.ConsumeHandler that routes each job to the handler registered
// for its type (TypeHeader), so that one tube can carry several kinds of job.
// A job of a type with no handler goes to the dead letter: the error matches
// ErrUnknownType and dq.ErrSkipRetry. Jobs without a type (plain dq jobs,
// go-queue bodies) route to the handler registered for "". It is safe for
// concurrent use, also while handlers are added.
type Mux struct {
	mu       sync.RWMutex
	handlers map[string]dq.ConsumeHandler
}

// ErrUnknownType is matched by the error of a Mux given a job whose type has
// no handler.
var ErrUnknownType = errors.New("dqx: no handler for job type")

// NewMux returns an empty Mux.
func NewMux() *Mux {
	return &Mux{handlers: make(map[string]dq.ConsumeHandler)}
}

// Handle registers h for jobs of the given type. Like http.ServeMux, it
// panics on a nil handler or a type registered twice: both are programming
// errors that should fail at start, not dead-letter jobs later.
func (m *Mux) Handle(typeName string, h dq.ConsumeHandler) {
	if h == nil {
		panic("dqx: Mux.Handle: nil handler for type " + typeName)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.handlers[typeName]; dup {
		panic("dqx: Mux.Handle: type " + typeName + " registered twice")
	}
	m.handlers[typeName] = h
}

// HandleFunc registers fn for jobs of the given type.
func (m *Mux) HandleFunc(typeName string, fn func(ctx context.Context, body []byte) error) {
	m.Handle(typeName, dq.HandlerFunc(fn))
}

// HandleCron registers h for the fires of the cron entry named entry (one
// whose Type is left empty).
func (m *Mux) HandleCron(entry string, h dq.ConsumeHandler) {
	m.Handle(CronType(entry), h)
}

// Consume runs the handler of the job's type.
func (m *Mux) Consume(ctx context.Context, body []byte) error {
	var typ string
	if job, ok := dq.JobFromContext(ctx); ok {
		typ = job.Headers[TypeHeader]
	}
	m.mu.RLock()
	h := m.handlers[typ]
	m.mu.RUnlock()
	if h == nil {
		return fmt.Errorf("%w %q: %w", ErrUnknownType, typ, dq.ErrSkipRetry)
	}
	return h.Consume(ctx, body)
}
