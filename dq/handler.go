package dq

import (
	"context"
	"errors"
)

// ConsumeHandler runs jobs. A returned error means "retry later" (with
// exponential backoff, up to MaxRetries); an error wrapping ErrSkipRetry
// sends the job straight to the dead letter. The ctx carries the job (see
// JobFromContext) and is cancelled at Timeout, on Stop, or when the claim
// on the job is lost.
type ConsumeHandler interface {
	Consume(ctx context.Context, body []byte) error
}

// HandlerFunc adapts a function to ConsumeHandler.
type HandlerFunc func(ctx context.Context, body []byte) error

// Consume calls f.
func (f HandlerFunc) Consume(ctx context.Context, body []byte) error { return f(ctx, body) }

// WithHandle turns a function into a ConsumeHandler.
func WithHandle(fn func(ctx context.Context, body []byte) error) ConsumeHandler {
	return HandlerFunc(fn)
}

// ErrSkipRetry, wrapped in a handler's error, buries the job at once
// instead of retrying it.
var ErrSkipRetry = errors.New("dq: skip retry")
