package dq

import (
	"context"

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

// startEnqueueSpan starts the producer's span for one enqueue.
func startEnqueueSpan(ctx context.Context, tube string) (context.Context, oteltrace.Span) {
	return otel.Tracer(ztrace.TraceName).Start(ctx, "zerodq.enqueue",
		oteltrace.WithSpanKind(oteltrace.SpanKindProducer),
		oteltrace.WithAttributes(attrTube.String(tube)))
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
