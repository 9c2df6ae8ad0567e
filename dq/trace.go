package dq

import (
	"context"
	"reflect"
	"sync/atomic"

	ztrace "github.com/zeromicro/go-zero/core/trace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// beanstalkd has no message headers: the W3C trace context of the enqueue
// travels in the envelope's headers, so that a handler's span is a child of
// the span that enqueued its job, in whatever process that ran.

// Span attribute keys.
const (
	attrJobID    = attribute.Key("zerodq.job.id")
	attrAttempt  = attribute.Key("zerodq.job.attempt")
	attrTube     = attribute.Key("zerodq.tube")
	attrLateness = attribute.Key("zerodq.lateness_ms")
)

// enqueueTracer starts the producer's spans. The tracer of the global
// provider is looked up once per provider, and the span options once per
// producer: an enqueue no service traces pays only for the no-op span.
type enqueueTracer struct {
	cur  atomic.Pointer[providerTracer]
	opts []oteltrace.SpanStartOption
}

type providerTracer struct {
	provider oteltrace.TracerProvider
	tracer   oteltrace.Tracer
	// void is set for a provider whose spans record and carry nothing
	// (voidProvider): an enqueue with no trace in its context then skips
	// the span.
	void bool
}

// voidProvider reports whether tp's spans record and carry nothing, however
// they are started: the global provider before one is set (once one is,
// otel hands out that one instead) and the no-op ones. It goes by the
// provider's package, not by starting a span, which a real provider would
// export; a provider it does not know is not void.
func voidProvider(tp oteltrace.TracerProvider) bool {
	t := reflect.TypeOf(tp)
	if t == nil {
		return false
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.PkgPath() {
	case "go.opentelemetry.io/otel/internal/global", // before SetTracerProvider
		"go.opentelemetry.io/otel/trace/noop",
		"go.opentelemetry.io/otel/trace": // the deprecated NewNoopTracerProvider
		return true
	}
	return false
}

// voidSpan is the span of an enqueue that nothing traces: it ends nothing.
var voidSpan = oteltrace.SpanFromContext(context.Background())

func (t *enqueueTracer) init(tube string) {
	t.opts = []oteltrace.SpanStartOption{
		oteltrace.WithSpanKind(oteltrace.SpanKindProducer),
		oteltrace.WithAttributes(attrTube.String(tube)),
	}
}

// start starts the producer's span for one enqueue, with the tracer of the
// provider set now.
func (t *enqueueTracer) start(ctx context.Context) (context.Context, oteltrace.Span) {
	tp := otel.GetTracerProvider()
	// Only comparable providers are kept, so that comparing one with tp,
	// which never panics between different types, never panics at all.
	cur := t.cur.Load()
	if cur == nil || cur.provider != tp {
		cur = &providerTracer{provider: tp, tracer: tp.Tracer(ztrace.TraceName), void: voidProvider(tp)}
		if reflect.TypeOf(tp).Comparable() {
			t.cur.Store(cur)
		}
	}
	if cur.void && !oteltrace.SpanContextFromContext(ctx).IsValid() {
		// Its span would carry nothing; its context, a value to look up.
		return ctx, voidSpan
	}
	return cur.tracer.Start(ctx, "zerodq.enqueue", t.opts...)
}

// traceHeaders appends the trace context of ctx to an enqueue's headers.
func traceHeaders(ctx context.Context, hs []header) []header {
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	for k, v := range carrier {
		hs = append(hs, header{key: k, value: v})
	}
	return hs
}

// startConsumeSpan starts the handler's span as a child of the enqueue span
// carried in the job's headers.
func startConsumeSpan(ctx context.Context, j *Job, latenessMs int64) (context.Context, oteltrace.Span) {
	if len(j.Headers) > 0 {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(j.Headers))
	}
	return otel.Tracer(ztrace.TraceName).Start(ctx, "zerodq.consume",
		oteltrace.WithSpanKind(oteltrace.SpanKindConsumer),
		oteltrace.WithAttributes(attrJobID.String(j.ID), attrAttempt.Int(j.Attempt), attrTube.String(j.Tube),
			attrLateness.Int64(latenessMs)))
}
