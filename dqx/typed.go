package dqx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// Codec turns a job's value into its body and back.
type Codec interface {
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to.
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec, encoding/json.
type JSONCodec struct{}

// Marshal encodes v as JSON.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// ErrDecode is matched by the error of a typed handler whose job body does
// not decode; the error also wraps dq.ErrSkipRetry, since a body that does
// not decode now never will, so the job goes to the dead letter at once.
var ErrDecode = errors.New("dqx: job body does not decode")

// TypedOption tunes a TypedProducer or a typed handler.
type TypedOption func(*typedOptions)

type typedOptions struct {
	codec Codec
}

// WithCodec sets the codec of a TypedProducer or a typed handler; the two
// sides of a job type must agree. If unset, JSONCodec.
func WithCodec(c Codec) TypedOption {
	return func(o *typedOptions) { o.codec = c }
}

func typedOpts(opts []TypedOption) typedOptions {
	o := typedOptions{codec: JSONCodec{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.codec == nil {
		o.codec = JSONCodec{}
	}
	return o
}

// TypedProducer enqueues values of type T as jobs of one job type: the
// value encoded by the codec is the body, the type travels in TypeHeader for
// a Mux to route on. It is safe for concurrent use.
type TypedProducer[T any] struct {
	p     dq.Producer
	typ   string
	codec Codec
}

// NewTypedProducer returns a TypedProducer of jobs of the given type name on
// p. An empty typeName means the Go name of T (as in main.Order); a name of
// your own survives renaming the type.
func NewTypedProducer[T any](p dq.Producer, typeName string, opts ...TypedOption) *TypedProducer[T] {
	if typeName == "" {
		typeName = reflect.TypeFor[T]().String()
	}
	return &TypedProducer[T]{p: p, typ: typeName, codec: typedOpts(opts).codec}
}

// Type returns the job type the producer writes.
func (tp *TypedProducer[T]) Type() string { return tp.typ }

// Enqueue encodes v and enqueues it to run after delay, returning the job ID.
// The options are those of dq.Producer.DelayCtx.
func (tp *TypedProducer[T]) Enqueue(ctx context.Context, v T, delay time.Duration,
	opts ...dq.JobOption) (string, error) {
	body, err := tp.codec.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("dqx: encoding %s job: %w", tp.typ, err)
	}
	return tp.p.DelayCtx(ctx, body, delay, tp.options(opts)...)
}

// EnqueueAt encodes v and enqueues it to run at the given time, returning
// the job ID. The options are those of dq.Producer.AtCtx.
func (tp *TypedProducer[T]) EnqueueAt(ctx context.Context, v T, at time.Time,
	opts ...dq.JobOption) (string, error) {
	body, err := tp.codec.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("dqx: encoding %s job: %w", tp.typ, err)
	}
	return tp.p.AtCtx(ctx, body, at, tp.options(opts)...)
}

// options puts the type header last: a job's headers reach the handler as a
// map in which the last header of a name wins, so a caller's own "type"
// header cannot make the job route elsewhere than its body's type.
func (tp *TypedProducer[T]) options(opts []dq.JobOption) []dq.JobOption {
	all := make([]dq.JobOption, 0, len(opts)+1)
	all = append(all, opts...)
	return append(all, dq.WithHeader(TypeHeader, tp.typ))
}

// Handle returns a handler that decodes each job body into a T and calls fn
// with it. A body that does not decode is dead-lettered (the error matches
// ErrDecode and dq.ErrSkipRetry); fn's own error means retry, as for any
// handler.
func Handle[T any](fn func(ctx context.Context, v T) error, opts ...TypedOption) dq.ConsumeHandler {
	codec := typedOpts(opts).codec
	return dq.HandlerFunc(func(ctx context.Context, body []byte) error {
		var v T
		if err := codec.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("%w: as %T: %w: %w", ErrDecode, v, err, dq.ErrSkipRetry)
		}
		return fn(ctx, v)
	})
}
